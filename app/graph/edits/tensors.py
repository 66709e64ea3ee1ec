"""Edits of tensors: rename everywhere (subgraph bodies included) and replace initializer values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from onnx import GraphProto, NodeProto, TensorProto, helper, numpy_helper

from ..document import ModelDocument, Scope, copy_message
from ..errors import EditError, NotFoundError
from ..folding import constant_tensor, is_constant_node
from ..index import subgraphs
from ..values import array_from_json, array_from_npy_base64, dtype_name
from .common import field, name_field


def rename_tensor(doc: ModelDocument, edit: dict[str, Any]) -> None:
    scope = doc.main
    old = name_field(edit, "tensor")
    new = name_field(edit, "to")
    if old == new:
        return
    present = scope.visible(old) or old in scope.index.consumers or any(old in n for n in scope.names.values())
    if not present:
        raise NotFoundError(f"no tensor '{old}' in the graph", code="unknown_tensor", details={"tensor": old})
    if _name_in_use(doc, new):
        raise EditError(f"a tensor named '{new}' already exists", code="name_taken", details={"tensor": new})
    touched: dict[int, NodeProto] = {}
    producer = scope.index.producer.get(old)
    if producer is not None:
        touched[id(producer)] = producer
    for reader in scope.index.users(old):
        touched[id(reader)] = reader
    for node in touched.values():
        doc.replace_node(scope, node, _renamed_node(node, old, new))
    for field_name in ("input", "output", "value_info", "initializer"):
        pos = scope.find_item(field_name, old)
        if pos is not None:
            renamed = copy_message(getattr(scope.graph, field_name)[pos])
            renamed.name = new
            doc.replace_item(scope, field_name, pos, renamed)


def _name_in_use(doc: ModelDocument, name: str) -> bool:
    """Taken anywhere, bodies included, so that a rename cannot capture or shadow another tensor."""
    main = doc.main
    if main.visible(name) or name in main.index.consumers or any(name in names for names in main.names.values()):
        return True
    return any(_used_in_body(g, name) for owner in main.index.owners.values() for _, _, g in subgraphs(owner))


def _used_in_body(graph: GraphProto, name: str) -> bool:
    if _graph_defines(graph, name) or any(v.name == name for v in graph.output):
        return True
    for node in graph.node:
        if name in node.input or name in node.output:
            return True
        if any(_used_in_body(g, name) for _, _, g in subgraphs(node)):
            return True
    return False


def _graph_defines(graph: GraphProto, name: str) -> bool:
    return any(v.name == name for v in graph.input) or any(t.name == name for t in graph.initializer)


def _renamed_node(node: NodeProto, old: str, new: str) -> NodeProto:
    """A copy reading/writing `new` for `old`, inside bodies too unless a body defines its own `old`."""
    renamed = copy_message(node)
    _rename_in_node(renamed, old, new)
    return renamed


def _rename_in_node(node: NodeProto, old: str, new: str) -> None:
    for i, name in enumerate(node.input):
        if name == old:
            node.input[i] = new
    for i, name in enumerate(node.output):
        if name == old:
            node.output[i] = new
    for _, _, body in subgraphs(node):
        if _graph_defines(body, old) or any(old in n.output for n in body.node):
            continue  # shadowed: the body's own tensor of that name
        for inner in body.node:
            _rename_in_node(inner, old, new)
        for vi in body.output:
            if vi.name == old:
                vi.name = new


def set_initializer(doc: ModelDocument, edit: dict[str, Any]) -> None:
    scope = doc.main
    name = name_field(edit, "name")
    reshape = field(edit, "reshape", bool, False)
    if "npy_base64" in edit:
        array = array_from_npy_base64(edit["npy_base64"])
        from_json = False
    elif "value" in edit:
        array = None
        from_json = True
    else:
        raise EditError("set_initializer: give 'value' (nested lists) or 'npy_base64'", code="missing_field")
    pos = scope.find_item("initializer", name)
    if pos is not None:
        old = scope.graph.initializer[pos]
        new = _new_tensor(old, edit, array, from_json, reshape)
        doc.replace_item(scope, "initializer", pos, new)
        if reshape:
            _retype_input(doc, scope, new)
        return
    producer = scope.index.producer.get(name)
    if producer is not None and is_constant_node(producer):
        value_attr = next((a for a in producer.attribute if a.name == "value"), None)
        if value_attr is None:
            raise EditError(
                f"Constant node '{scope.node_id(producer)}' holds its value in another attribute; "
                "use set_attribute on it",
                code="bad_initializer",
            )
        new = _new_tensor(value_attr.t, edit, array, from_json, reshape)
        changed = copy_message(producer)
        for attr in changed.attribute:
            if attr.name == "value":
                attr.t.CopyFrom(new)
        doc.replace_node(scope, producer, changed)
        return
    raise NotFoundError(
        f"no initializer or Constant output named '{name}'", code="unknown_tensor", details={"tensor": name}
    )


def _new_tensor(
    old: TensorProto, edit: dict[str, Any], array: np.ndarray | None, from_json: bool, reshape: bool
) -> TensorProto:
    """The replacement tensor, checked against the old one's dtype and shape unless reshaping."""
    old_dtype = helper.tensor_dtype_to_np_dtype(old.data_type)
    old_shape = tuple(old.dims)
    if from_json:
        dtype = old_dtype
        if "dtype" in edit:
            from ..values import parse_dtype

            wanted = parse_dtype(edit["dtype"])
            if wanted != old.data_type and not reshape:
                raise EditError(
                    f"initializer '{old.name}' is {dtype_name(old.data_type)}, not "
                    f'{dtype_name(wanted)}; set "reshape": true to change its type',
                    code="wrong_dtype",
                    details={"tensor": old.name},
                )
            dtype = helper.tensor_dtype_to_np_dtype(wanted)
        array = array_from_json(edit["value"], dtype)
    assert array is not None
    if not reshape:
        if array.dtype != old_dtype:
            raise EditError(
                f"initializer '{old.name}' is {dtype_name(old.data_type)}, the new value is "
                f'{array.dtype}; set "reshape": true to change its type',
                code="wrong_dtype",
                details={"tensor": old.name, "expected": dtype_name(old.data_type)},
            )
        if array.shape != old_shape:
            if array.size == 1 and int(np.prod(old_shape)) == 1:
                array = array.reshape(old_shape)  # scalars stay scalars, [x] stays [x]
            else:
                raise EditError(
                    f"initializer '{old.name}' has shape {list(old_shape)}, the new value "
                    f'{list(array.shape)}; set "reshape": true to change its shape',
                    code="wrong_shape",
                    details={"tensor": old.name, "expected": list(old_shape)},
                )
    new = numpy_helper.from_array(array, old.name)
    if old.doc_string:
        new.doc_string = old.doc_string
    return new


def _retype_input(doc: ModelDocument, scope: Scope, tensor: TensorProto) -> None:
    """An initializer also listed as a graph input (IR < 4, or overridable) keeps a matching type."""
    pos = scope.find_item("input", tensor.name)
    if pos is not None:
        doc.replace_item(
            scope, "input", pos, helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims))
        )


def constants_to_initializers(doc: ModelDocument, edit: dict[str, Any]) -> None:
    """Constant nodes of the main graph become initializers of the same name (Paddle exports keep every
    weight so): their values are then listed, downloaded, replaced and quantized like any weight.
    `min_elements` (default 1) leaves smaller constants, such as scalars of shape arithmetic, as nodes."""
    scope = doc.main
    min_elements = field(edit, "min_elements", int, 1)
    outputs = set(scope.names["output"])
    moved: list[tuple[int, NodeProto, TensorProto]] = []
    for pos, node in enumerate(scope.graph.node):
        if (
            not is_constant_node(node)
            or not node.output
            or node.output[0] in outputs
            or node.output[0] in scope.initializers
        ):
            continue
        tensor = constant_tensor(node)
        if tensor is not None and math.prod(tensor.dims) >= min_elements:
            moved.append((pos, node, tensor))
    if not moved:
        raise EditError(
            "no Constant node holds a tensor to move"
            + (f" of at least {min_elements} elements" if min_elements > 1 else ""),
            code="nothing_to_do",
        )
    for pos, node, _tensor in reversed(moved):
        doc.remove_node(scope, node, pos)
    for _, node, tensor in moved:
        new = copy_message(tensor)
        new.name = node.output[0]
        doc.insert_item(scope, "initializer", len(scope.graph.initializer), new)
