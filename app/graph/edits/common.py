"""Helpers shared by the edits: reading edit fields, removing what nothing uses, finding types."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from onnx import NodeProto, TypeProto, ValueInfoProto, helper

from ..document import ModelDocument, Scope, copy_message
from ..errors import EditError, NotFoundError
from ..folding import is_constant_node

_MISSING = object()


def field(edit: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
    """One field of an edit, type-checked, with a message naming the edit and the field."""
    if key not in edit:
        if default is _MISSING:
            raise EditError(f"{edit.get('op')}: missing field '{key}'", code="missing_field", details={"field": key})
        return default
    value = edit[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        value = _MISSING
    if value is _MISSING or not isinstance(value, kinds):
        names = " or ".join(
            {
                str: "a string",
                bool: "true/false",
                int: "an integer",
                list: "a list",
                dict: "an object",
                float: "a number",
            }.get(k, k.__name__)
            for k in kinds
        )
        raise EditError(f"{edit.get('op')}: field '{key}' must be {names}", code="bad_field", details={"field": key})
    return value


def name_field(edit: dict[str, Any], key: str) -> str:
    value = field(edit, key, str)
    if not value:
        raise EditError(f"{edit.get('op')}: field '{key}' must not be empty", code="bad_field", details={"field": key})
    return value


def require_tensor(scope: Scope, tensor: str) -> None:
    if not (scope.visible(tensor) or tensor in scope.index.consumers):
        raise NotFoundError(f"no tensor '{tensor}' in the graph", code="unknown_tensor", details={"tensor": tensor})


def is_constant(scope: Scope, tensor: str) -> bool:
    """Initializers and outputs of Constant nodes: weights rather than data."""
    if tensor in scope.initializers and tensor not in scope.inputs:
        return True
    producer = scope.index.producer.get(tensor)
    return producer is not None and is_constant_node(producer)


def with_inputs(node: NodeProto, mapping: dict[str, str]) -> NodeProto:
    """A copy of the node reading mapping[t] wherever it read t."""
    new = copy_message(node)
    for i, name in enumerate(new.input):
        if name in mapping:
            new.input[i] = mapping[name]
    return new


def remove_nodes(doc: ModelDocument, scope: Scope, nodes: Iterable[NodeProto]) -> None:
    """Remove nodes highest position first, so each position stays valid without a rescan."""
    placed = sorted(((scope.index.position(n), n) for n in nodes), key=lambda pn: pn[0], reverse=True)
    for pos, node in placed:
        doc.remove_node(scope, node, pos)


def drop_unused(doc: ModelDocument, scope: Scope, candidates: Iterable[str]) -> None:
    """After nodes went away: remove the initializers, graph inputs, value_info and Constant nodes
    that only they used. Only tensors that lost their readers in this edit are candidates, so what
    the model already carried unused is left alone."""
    outputs = set(scope.index.output_names())
    dead: set[str] = set()
    constants: dict[int, NodeProto] = {}
    for name in dict.fromkeys(candidates):
        if not name or name in outputs or scope.index.users(name):
            continue
        producer = scope.index.producer.get(name)
        if producer is None:
            dead.add(name)
        elif is_constant_node(producer) and not any(scope.index.users(o) or o in outputs for o in producer.output):
            constants[id(producer)] = producer
            dead.update(producer.output)
    remove_nodes(doc, scope, constants.values())
    for field_name in ("initializer", "input", "value_info"):
        remove_named(doc, scope, field_name, dead)


def remove_named(doc: ModelDocument, scope: Scope, field_name: str, names: set[str]) -> None:
    """Remove the entries of a graph list with these names, highest position first."""
    present = names & scope.names[field_name]
    if not present:
        return
    if len(present) <= 16:
        found = [scope.find_item(field_name, n) for n in present]
        positions = sorted((p for p in found if p is not None), reverse=True)
    else:  # many: one scan beats many lookups
        items = getattr(scope.graph, field_name)
        positions = [i for i in reversed(range(len(items))) if items[i].name in present]
    for pos in positions:
        doc.remove_item(scope, field_name, pos)


def drop_dead_value_info(doc: ModelDocument, scope: Scope) -> None:
    """Remove value_info entries of tensors that no longer exist in the graph."""
    remove_named(
        doc,
        scope,
        "value_info",
        {name for name in scope.names["value_info"] if not scope.defines(name) and not scope.index.users(name)},
    )


def known_value_info(scope: Scope, tensor: str) -> ValueInfoProto | None:
    """A typed ValueInfoProto the model already holds for this tensor."""
    for field_name in ("input", "output", "value_info"):
        pos = scope.find_item(field_name, tensor)
        if pos is not None and typed(getattr(scope.graph, field_name)[pos].type):
            return copy_message(getattr(scope.graph, field_name)[pos])
    pos = scope.find_item("initializer", tensor)
    if pos is not None:
        t = scope.graph.initializer[pos]
        return helper.make_tensor_value_info(tensor, t.data_type, list(t.dims))
    producer = scope.index.producer.get(tensor)
    if producer is not None and is_constant_node(producer):
        for attr in producer.attribute:
            if attr.name == "value" and attr.t.data_type:
                return helper.make_tensor_value_info(tensor, attr.t.data_type, list(attr.t.dims))
    return None


def value_info_for(doc: ModelDocument, scope: Scope, tensor: str) -> ValueInfoProto:
    """Type and shape of a tensor: what the model holds, else onnx shape inference."""
    known = known_value_info(scope, tensor)
    if known is not None:
        return known
    if not scope.path:
        from ..shapes import inferred_types

        inferred = inferred_types(doc).get(tensor)
        if inferred is not None:
            vi = ValueInfoProto(name=tensor)
            vi.type.CopyFrom(inferred)
            return vi
    raise EditError(
        f"the type of tensor '{tensor}' is unknown (onnx shape inference cannot tell it); "
        'give "dtype" and "shape" with the edit',
        code="unknown_type",
        details={"tensor": tensor},
    )


def position_after_producers(scope: Scope, reads: Iterable[str]) -> int:
    """Where a new node can go: right after the last node producing one of its inputs."""
    last = -1
    for name in reads:
        producer = scope.index.producer.get(name)
        if producer is not None:
            last = max(last, scope.index.position(producer))
    return last + 1


def typed(type_proto: TypeProto) -> bool:
    return type_proto.WhichOneof("value") is not None


def unique_node_name(scope: Scope, base: str) -> str:
    if base not in scope.index.by_name:
        return base
    k = 1
    while f"{base}_{k}" in scope.index.by_name:
        k += 1
    return f"{base}_{k}"
