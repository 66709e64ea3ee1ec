"""Edits of the model's interface: inputs, outputs, their shapes, and named symbolic dims."""

from __future__ import annotations

from typing import Any

from onnx import GraphProto, TypeProto, ValueInfoProto, helper

from ..document import ModelDocument, Scope, copy_message
from ..errors import EditError, NotFoundError
from ..index import subgraphs
from ..values import check_shape, parse_dtype
from .common import field, name_field, require_tensor, value_info_for
from .static import declare_inferred


def add_input(doc: ModelDocument, edit: dict[str, Any]) -> None:
    scope = doc.main
    name = name_field(edit, "name")
    data_type = parse_dtype(field(edit, "dtype", str))
    shape = check_shape(field(edit, "shape", list), f"input '{name}'")
    if name in scope.inputs:
        raise EditError(f"'{name}' is already a model input", code="name_taken", details={"tensor": name})
    if name in scope.index.producer:
        raise EditError(
            f"tensor '{name}' is produced by node '{scope.node_id(scope.index.producer[name])}'; "
            "a model input needs a new name",
            code="name_taken",
            details={"tensor": name},
        )
    doc.insert_item(scope, "input", len(scope.graph.input), helper.make_tensor_value_info(name, data_type, shape))


def remove_input(doc: ModelDocument, edit: dict[str, Any]) -> None:
    scope = doc.main
    name = name_field(edit, "name")
    pos = scope.find_item("input", name)
    if pos is None:
        raise NotFoundError(f"no model input '{name}'", code="unknown_input", details={"tensor": name})
    readers = scope.index.users(name)
    if readers and name not in scope.initializers:
        raise EditError(
            f"input '{name}' is still read by node '{scope.node_id(readers[0])}'; delete or rewire its readers first",
            code="dangling_tensor",
            details={"tensor": name},
        )
    doc.remove_item(scope, "input", pos)


def add_output(doc: ModelDocument, edit: dict[str, Any]) -> None:
    scope = doc.main
    name = name_field(edit, "tensor")
    require_tensor(scope, name)
    if name in scope.names["output"]:
        raise EditError(f"'{name}' is already a model output", code="name_taken", details={"tensor": name})
    if "dtype" in edit:  # declared by the user, for ops onnx cannot infer (custom domains)
        out = helper.make_tensor_value_info(
            name, parse_dtype(field(edit, "dtype", str)), check_shape(field(edit, "shape", list), f"output '{name}'")
        )
    else:
        vi = value_info_for(doc, scope, name)
        out = ValueInfoProto(name=name)
        out.type.CopyFrom(vi.type)
    doc.insert_item(scope, "output", len(scope.graph.output), out)


def remove_output(doc: ModelDocument, edit: dict[str, Any]) -> None:
    scope = doc.main
    name = name_field(edit, "name")
    pos = scope.find_item("output", name)
    if pos is None:
        raise NotFoundError(f"no model output '{name}'", code="unknown_output", details={"tensor": name})
    if len(scope.graph.output) == 1:
        raise EditError(f"'{name}' is the last model output; a model needs at least one", code="no_outputs")
    doc.remove_item(scope, "output", pos)


def set_shape(doc: ModelDocument, edit: dict[str, Any]) -> None:
    name = name_field(edit, "tensor")
    if _set_shape(doc, name, check_shape(field(edit, "shape", list), f"tensor '{name}'")) == "input":
        declare_inferred(doc)


def _set_shape(doc: ModelDocument, name: str, shape: list[int | str | None]) -> str:
    """Declare the shape of a model input or output; which of the two it was."""
    scope = doc.main
    for field_name in ("input", "output"):
        pos = scope.find_item(field_name, name)
        if pos is None:
            continue
        old = getattr(scope.graph, field_name)[pos]
        if old.type.WhichOneof("value") not in (None, "tensor_type"):
            raise EditError(
                f"'{name}' is not a tensor (it is a {old.type.WhichOneof('value')})",
                code="not_a_tensor",
                details={"tensor": name},
            )
        had = old.type.tensor_type
        if field_name == "input" and had.HasField("shape") and len(had.shape.dim) != len(shape):
            raise EditError(
                f"input '{name}' has {len(had.shape.dim)} dims; a shape of {len(shape)} cannot "
                "feed the nodes that read it",
                code="bad_shape",
                details={"tensor": name},
            )
        new = copy_message(old)
        _write_shape(new.type, shape)
        doc.replace_item(scope, field_name, pos, new)
        return field_name
    raise NotFoundError(
        f"'{name}' is neither a model input nor a model output; set_shape works on those "
        "(use infer_shapes for the tensors in between)",
        code="unknown_tensor",
        details={"tensor": name},
    )


def _write_shape(type_proto: TypeProto, shape: list[int | str | None]) -> None:
    tensor_type = type_proto.tensor_type
    tensor_type.ClearField("shape")
    tensor_type.shape.SetInParent()
    for dim in shape:
        entry = tensor_type.shape.dim.add()
        if isinstance(dim, int):
            entry.dim_value = dim
        elif isinstance(dim, str):
            entry.dim_param = dim


def fix_dim(doc: ModelDocument, edit: dict[str, Any]) -> None:
    _fix_dim(doc, name_field(edit, "dim"), field(edit, "value", int))
    declare_inferred(doc)


def make_static(doc: ModelDocument, edit: dict[str, Any]) -> None:
    """The whole NPU preparation in one step: input shapes and named dims fixed, then every shape
    inference can tell written into the file (graph outputs and value_info)."""
    shapes = edit.get("shapes", {})
    dims = edit.get("dims", {})
    if not isinstance(shapes, dict) or not isinstance(dims, dict) or not (shapes or dims):
        raise EditError(
            "make_static takes 'shapes' ({input: [sizes]}) and/or 'dims' ({dim name: size})", code="bad_edit"
        )
    scope = doc.main
    for name, shape in shapes.items():
        if name not in scope.inputs or name in scope.initializers:
            raise NotFoundError(f"'{name}' is not a model input", code="unknown_input", details={"tensor": name})
        if not isinstance(shape, list) or not all(_is_size(d) for d in shape):
            raise EditError(
                f"make_static: the shape of '{name}' must be a list of positive sizes, not {shape!r}",
                code="bad_shape",
                details={"tensor": name},
            )
        _set_shape(doc, name, shape)
    for dim_name, value in dims.items():
        if not _is_size(value):
            raise EditError(
                f"make_static: dim '{dim_name}' must be a positive size, not {value!r}",
                code="bad_shape",
                details={"dim": dim_name},
            )
        _fix_dim(doc, dim_name, value)
    declare_inferred(doc)


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _fix_dim(doc: ModelDocument, dim_name: str, value: int) -> None:
    if value <= 0:
        raise EditError(f"fix_dim: value must be a positive size, not {value}", code="bad_shape")
    if not _fix_dim_in(doc, doc.main, dim_name, value):
        names = sorted(symbolic_dims(doc.main.graph))
        raise NotFoundError(
            f"no symbolic dim named '{dim_name}'"
            + (f"; the model's named dims are: {', '.join(names)}" if names else "; the model has no named dims"),
            code="unknown_dim",
            details={"dim": dim_name},
        )


def _fix_dim_in(doc: ModelDocument, scope: Scope, dim_name: str, value: int) -> bool:
    found = False
    for field_name in ("input", "output", "value_info"):
        for pos, vi in enumerate(getattr(scope.graph, field_name)):
            if any(d.dim_param == dim_name for d in _dims(vi.type)):
                new = copy_message(vi)
                for d in _dims(new.type):
                    if d.dim_param == dim_name:
                        d.dim_value = value
                doc.replace_item(scope, field_name, pos, new)
                found = True
    for owner in list(scope.index.owners.values()):
        for attr_name, gi, body in subgraphs(owner):
            if dim_name in symbolic_dims(body):
                pos = scope.index.position(owner)
                found |= _fix_dim_in(doc, doc.scope(scope.path + ((pos, attr_name, gi),)), dim_name, value)
    return found


def _dims(type_proto: TypeProto) -> list[Any]:
    """The dims of a tensor type, also inside sequence/optional types."""
    kind = type_proto.WhichOneof("value")
    if kind == "tensor_type":
        return list(type_proto.tensor_type.shape.dim)
    if kind == "sequence_type":
        return _dims(type_proto.sequence_type.elem_type)
    if kind == "optional_type":
        return _dims(type_proto.optional_type.elem_type)
    return []


def symbolic_dims(graph: GraphProto) -> set[str]:
    names = {
        d.dim_param
        for items in (graph.input, graph.output, graph.value_info)
        for vi in items
        for d in _dims(vi.type)
        if d.dim_param
    }
    for node in graph.node:
        for _, _, body in subgraphs(node):
            names |= symbolic_dims(body)
    return names
