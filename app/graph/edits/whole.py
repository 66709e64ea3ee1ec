"""Edits that rework the whole graph: extract, cleanup, fold_constants, convert_opset.

Each is still expressed as primitive changes (remove this node, add that initializer), so undo
restores the model exactly and costs only what the edit changed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, ValueInfoProto, helper, numpy_helper

from ..document import ModelDocument, Scope, copy_message
from ..errors import EditError, first_line
from ..folding import DEFAULT_SIZE_LIMIT, constant_node_value, fold, is_constant_node
from ..skeleton import data_inputs, is_small, skeleton
from .common import drop_dead_value_info, drop_unused, field, remove_nodes, require_tensor, value_info_for


def extract(doc: ModelDocument, edit: dict[str, Any]) -> None:
    scope = doc.main
    inputs = field(edit, "inputs", list)
    outputs = field(edit, "outputs", list)
    if not outputs or not all(isinstance(t, str) and t for t in inputs + outputs):
        raise EditError("extract: give lists of tensor names, at least one output", code="bad_field")
    for name in inputs + outputs:
        require_tensor(scope, name)
    boundary = set(inputs)
    kept = scope.index.upstream(outputs, stop=boundary)
    kept_ids = {id(n) for n in kept}
    available = boundary | scope.initializers | {o for n in kept for o in n.output if o}
    for node in kept:
        for name in scope.index.reads(node):
            if name not in available:
                raise EditError(
                    f"output depends on '{name}' (read by node '{scope.node_id(node)}'), which is not "
                    "among the extract inputs; add it to 'inputs'",
                    code="open_boundary",
                    details={"tensor": name},
                )
    for name in outputs:
        if name not in available:
            raise EditError(
                f"output '{name}' is not computed from the given inputs", code="open_boundary", details={"tensor": name}
            )
    new_inputs = [_value_info(doc, scope, t) for t in inputs]
    new_outputs = [_value_info(doc, scope, t) for t in outputs]
    read = [t for n in scope.graph.node if id(n) not in kept_ids for t in scope.index.reads(n)]
    remove_nodes(doc, scope, [n for n in scope.graph.node if id(n) not in kept_ids])
    for pos in reversed(range(len(scope.graph.output))):
        doc.remove_item(scope, "output", pos)
    for pos in reversed(range(len(scope.graph.input))):
        name = scope.graph.input[pos].name
        if name not in boundary and not (name in scope.initializers and doc.model.ir_version < 4):
            doc.remove_item(scope, "input", pos)
    present = {v.name for v in scope.graph.input}
    for vi in new_inputs:
        if vi.name not in present:
            doc.insert_item(scope, "input", len(scope.graph.input), vi)
    for vi in new_outputs:
        doc.insert_item(scope, "output", len(scope.graph.output), vi)
    # what the removed nodes read, and initializers cut off behind an input
    drop_unused(doc, scope, read + [t.name for t in scope.graph.initializer])
    drop_dead_value_info(doc, scope)
    doc.require_full_check()


def _value_info(doc: ModelDocument, scope: Scope, tensor: str) -> ValueInfoProto:
    vi = value_info_for(doc, scope, tensor)
    out = ValueInfoProto(name=tensor)
    out.type.CopyFrom(vi.type)
    return out


def cleanup(doc: ModelDocument, edit: dict[str, Any]) -> None:
    """Drop every node no graph output depends on, then what only those nodes used."""
    scope = doc.main
    remove_unused_inputs = field(edit, "remove_unused_inputs", bool, False)
    kept = {id(n) for n in scope.index.upstream(scope.index.output_names())}
    dead = [n for n in scope.graph.node if id(n) not in kept]
    read = [t for n in dead for t in scope.index.reads(n)]
    remove_nodes(doc, scope, dead)
    drop_unused(doc, scope, read + [t.name for t in scope.graph.initializer])
    if remove_unused_inputs:
        for pos in reversed(range(len(scope.graph.input))):
            name = scope.graph.input[pos].name
            if not scope.index.users(name) and name not in scope.names["output"]:
                doc.remove_item(scope, "input", pos)
    drop_dead_value_info(doc, scope)
    doc.require_full_check()


def fold_constants(doc: ModelDocument, edit: dict[str, Any]) -> None:
    """Replace what can be computed without the inputs by initializers, until nothing more folds."""
    from ..shapes import inferred_types

    scope = doc.main
    size_limit = field(edit, "size_limit_bytes", int, DEFAULT_SIZE_LIMIT)
    opsets = {o.domain: o.version for o in doc.model.opset_import}
    for _ in range(16):
        known = _constant_values(doc, scope)
        types = inferred_types(doc)
        folded, values = fold(
            scope.graph, opsets, doc.model.ir_version, known, types, data_inputs(doc.model).__contains__, size_limit
        )
        if not folded:
            break
        _apply_fold(doc, scope, folded, values)
    doc.require_full_check()


NUMERIC_CONSTANT_ATTRS = ("value", "value_int", "value_float", "value_ints", "value_floats")


def _constant_values(doc: ModelDocument, scope: Scope) -> dict[str, np.ndarray]:
    """Values of initializers (not overridable inputs) and of Constant nodes, read lazily from disk."""
    from ..io import read_tensor

    known: dict[str, np.ndarray] = {}
    overridable = data_inputs(doc.model)
    for tensor in scope.graph.initializer:
        if tensor.name not in overridable:
            known[tensor.name] = _Lazy(lambda t=tensor: read_tensor(t, doc.base_dir))  # type: ignore[assignment]
    for node in scope.graph.node:
        if is_constant_node(node) and node.output and any(a.name in NUMERIC_CONSTANT_ATTRS for a in node.attribute):
            known[node.output[0]] = _Lazy(lambda n=node: constant_node_value(n))  # type: ignore[assignment]
    return _LazyDict(known)


class _Lazy:
    """A value read only when a fold actually needs it (weights may be gigabytes on disk)."""

    def __init__(self, load: Any):
        self.load = load


class _LazyDict(dict):
    def __getitem__(self, key: str) -> np.ndarray:
        value = super().__getitem__(key)
        if isinstance(value, _Lazy):
            value = np.asarray(value.load())
            super().__setitem__(key, value)
        return value


def _apply_fold(doc: ModelDocument, scope: Scope, folded: list[onnx.NodeProto], values: dict[str, np.ndarray]) -> None:
    folded_ids = {id(n) for n in folded}
    outputs = set(scope.index.output_names())
    needed = [
        o
        for n in folded
        for o in n.output
        if o and (o in outputs or any(id(u) not in folded_ids for u in scope.index.users(o)))
    ]
    read = [t for n in folded for t in scope.index.reads(n)]
    remove_nodes(doc, scope, folded)
    for name in needed:
        tensor = numpy_helper.from_array(np.asarray(values[name]), name)
        doc.insert_item(scope, "initializer", len(scope.graph.initializer), tensor)
        if doc.model.ir_version < 4 and name not in scope.inputs:
            doc.insert_item(
                scope,
                "input",
                len(scope.graph.input),
                helper.make_tensor_value_info(name, tensor.data_type, list(tensor.dims)),
            )
        pos = scope.find_item("value_info", name)
        if pos is not None:
            doc.remove_item(scope, "value_info", pos)
    drop_unused(doc, scope, read)


def convert_opset(doc: ModelDocument, edit: dict[str, Any]) -> None:
    """onnx's version converter on the weightless skeleton; nodes and small constants come back."""
    version = field(edit, "version", int)
    current = doc.opset_version("")
    if current is None:
        raise EditError(
            "the model imports no default ONNX opset (ai.onnx); convert_opset converts that domain only",
            code="no_opset",
        )
    if current == version:
        return
    if not 7 <= version <= onnx.defs.onnx_opset_version():
        raise EditError(
            f"opset {version} is outside what onnx supports (7 to {onnx.defs.onnx_opset_version()})", code="bad_opset"
        )
    work = skeleton(doc.model)
    stub_inputs = {v.name for v in work.graph.input} - doc.main.inputs
    try:
        converted = onnx.version_converter.convert_version(work, version)
    except Exception as err:  # the converter raises plain RuntimeError for unsupported ops
        raise EditError(f"cannot convert to opset {version}: {first_line(err)}", code="conversion_failed") from None
    _replace_graph(doc, doc.main, converted, stub_inputs)
    doc.set_opsets(list(converted.opset_import))
    if converted.ir_version != doc.model.ir_version:
        doc.set_model_field("ir_version", converted.ir_version)
    doc.require_full_check()


def _replace_graph(doc: ModelDocument, scope: Scope, converted: ModelProto, stub_inputs: set[str]) -> None:
    new_graph = converted.graph
    old_nodes = list(scope.graph.node)
    if len(old_nodes) == len(new_graph.node):
        for old, new in zip(old_nodes, new_graph.node, strict=True):
            if old != new:
                doc.replace_node(scope, old, copy_message(new))
    else:
        remove_nodes(doc, scope, old_nodes)
        for pos, node in enumerate(new_graph.node):
            doc.insert_node(scope, pos, copy_message(node))
    small = {t.name: t for t in new_graph.initializer}
    for pos, tensor in enumerate(scope.graph.initializer):
        if is_small(tensor) and tensor.name in small and small[tensor.name] != tensor:
            doc.replace_item(scope, "initializer", pos, copy_message(small[tensor.name]))
    existing = scope.initializers
    for name, tensor in small.items():
        if name not in existing:
            doc.insert_item(scope, "initializer", len(scope.graph.initializer), copy_message(tensor))
    for field_name in ("input", "output", "value_info"):
        old_items = list(getattr(scope.graph, field_name))
        new_items = [v for v in getattr(new_graph, field_name) if v.name not in stub_inputs]
        if old_items != new_items:
            for pos in reversed(range(len(old_items))):
                doc.remove_item(scope, field_name, pos)
            for pos, item in enumerate(new_items):
                doc.insert_item(scope, field_name, pos, copy_message(item))
