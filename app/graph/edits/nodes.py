"""Edits of single nodes: delete (with descendants or reconnecting), rename, rewire, add, attributes."""

from __future__ import annotations

from typing import Any

import onnx
from onnx import AttributeProto, NodeProto, OperatorSetIdProto, helper

from ..document import ModelDocument, Scope, copy_message
from ..errors import EditError, NotFoundError
from ..values import (
    ATTRIBUTE_TYPE_NAMES,
    attribute_from_json,
    attribute_type_number,
    guess_attribute_type,
    schema_attribute_type,
)
from .common import (
    drop_unused,
    field,
    is_constant,
    name_field,
    position_after_producers,
    remove_nodes,
    require_tensor,
    unique_node_name,
    with_inputs,
)

STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training")


def delete_node(doc: ModelDocument, edit: dict[str, Any]) -> None:
    scope, node = doc.resolve(field(edit, "node", (str, list)))
    descendants = field(edit, "descendants", bool, False)
    reconnect = field(edit, "reconnect", bool, False)
    if descendants and reconnect:
        raise EditError("delete_node: 'descendants' and 'reconnect' cannot both be true", code="bad_field")
    doomed = scope.index.downstream([node]) if descendants else [node]
    if reconnect:
        _reconnect_around(doc, scope, node)
    doomed_ids = {id(n) for n in doomed}
    produced = {o for n in doomed for o in n.output if o}
    for name in sorted(produced):
        readers = [u for u in scope.index.users(name) if id(u) not in doomed_ids]
        if readers:
            raise EditError(
                f"cannot delete: tensor '{name}' is still read by node '{scope.node_id(readers[0])}'; "
                "delete with descendants, reconnect, or rewire that node first",
                code="dangling_tensor",
                details={"tensor": name, "reader": scope.node_id(readers[0])},
            )
    lost_outputs = [i for i, v in enumerate(scope.graph.output) if v.name in produced]
    if lost_outputs and len(lost_outputs) == len(scope.graph.output) and not scope.path:
        raise EditError("cannot delete: the model would have no outputs left", code="no_outputs")
    read = [t for n in doomed for t in scope.index.reads(n)]
    remove_nodes(doc, scope, doomed)
    for pos in reversed(lost_outputs):
        doc.remove_item(scope, "output", pos)
    drop_unused(doc, scope, read + sorted(produced))


def _reconnect_around(doc: ModelDocument, scope: Scope, node: NodeProto) -> None:
    """Make the node's readers read its one data input, so that deleting it keeps the graph whole."""
    data_inputs = [t for t in node.input if t and not is_constant(scope, t)]
    used_outputs = [o for o in node.output if o and (scope.index.users(o) or o in scope.index.output_names())]
    if len(data_inputs) != 1 or len(used_outputs) > 1 or (used_outputs and used_outputs[0] != node.output[0]):
        raise EditError(
            f"cannot reconnect around node '{scope.node_id(node)}': it needs exactly one data input "
            f"and one used output (it has {len(data_inputs)} and {len(used_outputs)})",
            code="cannot_reconnect",
        )
    source, target = data_inputs[0], node.output[0]
    for reader in list(scope.index.users(target)):
        if target not in reader.input:
            raise EditError(
                f"cannot reconnect: '{target}' is read inside the body of node '{scope.node_id(reader)}'",
                code="cannot_reconnect",
            )
        doc.replace_node(scope, reader, with_inputs(reader, {target: source}))
    for pos, vi in enumerate(scope.graph.output):
        if vi.name == target:
            if source in scope.inputs or source in scope.index.output_names():
                raise EditError(
                    f"cannot reconnect: '{target}' is a model output and '{source}' is already a model input or output",
                    code="cannot_reconnect",
                )
            renamed = copy_message(vi)
            renamed.name = source
            doc.replace_item(scope, "output", pos, renamed)


def rename_node(doc: ModelDocument, edit: dict[str, Any]) -> None:
    scope, node = doc.resolve(field(edit, "node", (str, list)))
    new_name = name_field(edit, "to")
    if new_name == node.name:
        return
    if new_name in scope.index.by_name:
        raise EditError(f"a node named '{new_name}' already exists", code="name_taken", details={"name": new_name})
    renamed = copy_message(node)
    renamed.name = new_name
    doc.replace_node(scope, node, renamed)


def set_node_input(doc: ModelDocument, edit: dict[str, Any]) -> None:
    scope, node = doc.resolve(field(edit, "node", (str, list)))
    index = field(edit, "index", int)
    tensor = field(edit, "tensor", str)
    if not 0 <= index <= len(node.input):
        raise EditError(
            f"node '{scope.node_id(node)}' has {len(node.input)} inputs; index {index} is out of range",
            code="bad_index",
            details={"index": index},
        )
    if tensor:
        require_tensor(scope, tensor)
        if tensor in node.output:
            raise EditError(f"node '{scope.node_id(node)}' cannot read its own output '{tensor}'", code="cycle")
    rewired = copy_message(node)
    if index == len(node.input):
        rewired.input.append(tensor)
    else:
        rewired.input[index] = tensor
    producer = scope.index.producer.get(tensor)
    doc.replace_node(scope, node, rewired)
    if producer is not None:
        _order_after(doc, scope, rewired_node=node, producer=producer)


def _order_after(doc: ModelDocument, scope: Scope, rewired_node: NodeProto, producer: NodeProto) -> None:
    """Keep topological order after a rewire: move the node and what depends on it after the producer."""
    here, there = scope.index.position(rewired_node), scope.index.position(producer)
    if there < here:
        return
    placed = [(scope.index.position(n), n) for n in scope.index.downstream([rewired_node])]
    moving = [n for pos, n in sorted(placed, key=lambda pn: pn[0]) if here <= pos <= there]
    if any(n is producer for n in moving):
        raise EditError(
            f"node '{scope.node_id(rewired_node)}' would read a tensor computed from its own output "
            "(the graph would have a cycle)",
            code="cycle",
        )
    copies = [copy_message(n) for n in moving]
    remove_nodes(doc, scope, moving)
    target = scope.index.position(producer) + 1
    for offset, node in enumerate(copies):
        doc.insert_node(scope, target + offset, node)


def add_node(doc: ModelDocument, edit: dict[str, Any]) -> None:
    scope = doc.main
    op_type = name_field(edit, "op_type")
    domain = field(edit, "domain", str, "")
    inputs = field(edit, "inputs", list, [])
    outputs = field(edit, "outputs", list)
    attributes = field(edit, "attributes", dict, {})
    if not all(isinstance(t, str) for t in inputs + outputs):
        raise EditError("add_node: inputs and outputs must be lists of tensor names", code="bad_field")
    if not outputs or not all(outputs):
        raise EditError("add_node: give at least one output, and no empty output names", code="bad_field")
    for t in inputs:
        if t:
            require_tensor(scope, t)
    for t in outputs:
        if scope.visible(t) or t in scope.index.consumers or outputs.count(t) > 1:
            raise EditError(
                f"add_node: tensor '{t}' already exists; outputs must be new names",
                code="name_taken",
                details={"tensor": t},
            )
    name = field(edit, "name", str, "") or unique_node_name(scope, op_type)
    if name in scope.index.by_name:
        raise EditError(f"a node named '{name}' already exists", code="name_taken", details={"name": name})
    version = _domain_version(doc, domain, edit)
    schema = _schema(op_type, domain, version)
    node = helper.make_node(op_type, inputs, outputs, name=name, domain=domain or None)
    for attr_name, value in attributes.items():
        node.attribute.append(_attribute(op_type, domain, version, attr_name, value, schema, None))
    doc.insert_node(scope, position_after_producers(scope, inputs), node)


def _domain_version(doc: ModelDocument, domain: str, edit: dict[str, Any]) -> int:
    """The opset of the node's domain; a custom domain is added to opset_import on first use."""
    version = doc.opset_version(domain)
    if version is not None:
        return version
    if domain in ("", "ai.onnx"):
        raise EditError("the model imports no default ONNX opset", code="no_opset")
    version = field(edit, "domain_version", int, 1)
    opsets = list(doc.model.opset_import) + [OperatorSetIdProto(domain=domain, version=version)]
    doc.set_opsets(opsets)
    return version


def _schema(op_type: str, domain: str, version: int) -> onnx.defs.OpSchema | None:
    try:
        return onnx.defs.get_schema(op_type, version, domain)
    except onnx.defs.SchemaError:
        if domain in STANDARD_DOMAINS:
            raise EditError(
                f"no operator '{op_type}' in domain '{domain or 'ai.onnx'}' at opset {version}",
                code="unknown_op",
                details={"op_type": op_type},
            ) from None
        return None  # a custom op: anything goes, the runtime that implements it decides


def _attribute(
    op_type: str,
    domain: str,
    version: int | None,
    name: str,
    value: Any,
    schema: onnx.defs.OpSchema | None,
    existing: AttributeProto | None,
    type_name: str | None = None,
) -> AttributeProto:
    attr_type: int
    if existing is not None:
        attr_type = existing.type
    elif schema is not None:
        if name not in schema.attributes:
            known = ", ".join(sorted(schema.attributes)) or "none"
            raise EditError(
                f"operator '{op_type}' has no attribute '{name}' (its attributes: {known})",
                code="unknown_attribute",
                details={"attribute": name},
            )
        attr_type = attribute_type_number(schema.attributes[name])
    elif type_name is not None:
        if type_name not in ATTRIBUTE_TYPE_NAMES:
            raise EditError(f"unknown attribute type '{type_name}'", code="bad_attribute")
        attr_type = ATTRIBUTE_TYPE_NAMES[type_name]
    else:
        attr_type = schema_attribute_type(op_type, domain, version, name) or guess_attribute_type(value)
    return attribute_from_json(name, value, attr_type)


def set_attribute(doc: ModelDocument, edit: dict[str, Any]) -> None:
    scope, node = doc.resolve(field(edit, "node", (str, list)))
    name = name_field(edit, "name")
    if "value" not in edit:
        raise EditError("set_attribute: missing field 'value'", code="missing_field", details={"field": "value"})
    version = doc.opset_version(node.domain)
    existing = next((a for a in node.attribute if a.name == name), None)
    schema = _schema(node.op_type, node.domain, version) if version is not None else None
    attr = _attribute(
        node.op_type, node.domain, version, name, edit["value"], schema, existing, field(edit, "type", str, None)
    )
    changed = copy_message(node)
    for i, a in enumerate(changed.attribute):
        if a.name == name:
            changed.attribute[i].CopyFrom(attr)
            break
    else:
        changed.attribute.append(attr)
    doc.replace_node(scope, node, changed)


def remove_attribute(doc: ModelDocument, edit: dict[str, Any]) -> None:
    scope, node = doc.resolve(field(edit, "node", (str, list)))
    name = name_field(edit, "name")
    changed = copy_message(node)
    for i, a in enumerate(changed.attribute):
        if a.name == name:
            del changed.attribute[i]
            break
    else:
        raise NotFoundError(
            f"node '{scope.node_id(node)}' has no attribute '{name}'",
            code="unknown_attribute",
            details={"attribute": name},
        )
    doc.replace_node(scope, node, changed)
