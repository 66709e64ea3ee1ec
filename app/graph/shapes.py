"""Shape inference that goes as far as the model allows, and the static-shape report.

onnx's shape inference stops at shapes computed inside the graph (Shape -> Gather -> Concat ->
Reshape). Once the input shapes are fixed those computations are constants: we fold them on a
weightless copy of the model and infer again, until nothing changes. What is still not static
afterwards is either symbolic (named dims from the inputs) or truly data-dependent.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, TypeProto, helper, numpy_helper

from .document import ModelDocument, copy_message
from .errors import EditError, first_line
from .folding import constant_node_value, fold, is_constant_node, shape_text
from .postprocess import post_processing
from .skeleton import data_inputs, is_small, skeleton

DATA_DEPENDENT_OPS = {"NonZero", "NonMaxSuppression", "Unique", "Loop", "Compress", "StringSplit"}
MAX_ROUNDS = 8
SMALL_VALUE = 4096  # elements of a folded constant kept with its resolution (shapes, indices)
RESOLUTIONS_KEPT = 3  # the current one and two before it: what a client's "what changed since" compares


def _infer(model: ModelProto) -> ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as err:  # onnx raises InferenceError, ValidationError and plain RuntimeErrors
        raise EditError(f"shape inference failed: {first_line(err)}", code="inference_failed") from None


def _types_of(model: ModelProto) -> dict[str, TypeProto]:
    graph = model.graph
    types: dict[str, TypeProto] = {}
    for items in (graph.input, graph.value_info, graph.output):
        for vi in items:
            if vi.type.WhichOneof("value") is not None:
                types[vi.name] = vi.type
    for t in graph.initializer:
        types.setdefault(t.name, helper.make_tensor_type_proto(t.data_type, list(t.dims)))
    return types


@dataclass
class Resolution:
    """Types after folding shape computations, and which tensors turned out constant."""

    types: dict[str, TypeProto]
    constants: set[str]
    values: dict[str, np.ndarray]  # the small ones among the constants (shape computations)
    revision: int  # the document's revision it was computed at (see ModelDocument.tensor_revision)


def resolve(doc: ModelDocument) -> Resolution:
    """Infer, fold what became constant, infer again; cached until the model changes."""
    kept: OrderedDict[int, Resolution] = doc.derived.setdefault("resolutions", OrderedDict())
    cached = kept.get(doc.shape_revision)
    if cached is not None:
        kept.move_to_end(doc.shape_revision)
        return cached
    work = skeleton(doc.model)
    del work.graph.value_info[:]
    declared = {vi.name: copy_message(vi.type) for vi in work.graph.output}
    for vi in work.graph.output:  # declared output shapes may be stale (-1, old dims): infer them afresh
        if vi.type.WhichOneof("value") == "tensor_type":
            vi.type.tensor_type.ClearField("shape")
    opsets = {o.domain: o.version for o in work.opset_import}
    graph_inputs = data_inputs(work)
    known: dict[str, np.ndarray] = {
        t.name: numpy_helper.to_array(t) for t in work.graph.initializer if is_small(t) and t.name not in graph_inputs
    }
    for node in work.graph.node:
        if is_constant_node(node) and node.output:
            value = constant_node_value(node, 1 << 20)
            if value is not None:
                known[node.output[0]] = value
    constants: set[str] = set()
    inferred = _infer(work)
    for _ in range(MAX_ROUNDS):
        types = _types_of(inferred)
        folded, values = fold(
            work.graph, opsets, work.ir_version, known, types, graph_inputs.__contains__, size_limit=1 << 20
        )
        new = {k: v for k, v in values.items() if k not in known}
        if not new:
            break
        known.update(new)
        constants.update(new)
        _replace_by_initializers(work, folded, new)
        inferred = _infer(work)
    types = _types_of(inferred)
    for name, type_proto in declared.items():
        if classify(types.get(name))[0] == "unknown" and type_proto.WhichOneof("value") is not None:
            types[name] = type_proto
    for name in constants:
        value = known[name]
        types[name] = helper.make_tensor_type_proto(helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape))
    resolution = Resolution(
        types, constants, {k: known[k] for k in constants if known[k].size <= SMALL_VALUE}, doc.revision
    )
    kept[doc.shape_revision] = resolution
    while len(kept) > RESOLUTIONS_KEPT:
        kept.popitem(last=False)
    return resolution


def resolution_at(doc: ModelDocument, shape_revision: int) -> Resolution | None:
    """The resolution computed when the model was at this shape revision, if it is still kept."""
    return doc.derived.get("resolutions", {}).get(shape_revision)


def latest_resolution(doc: ModelDocument) -> Resolution | None:
    """The newest resolution computed, for types that an edit of a node does not change (its inputs');
    resolved now when there is none, None when inference fails on this model."""
    kept: OrderedDict[int, Resolution] = doc.derived.get("resolutions", OrderedDict())
    if kept:
        return kept[next(reversed(kept))]
    try:
        return resolve(doc)
    except EditError:
        return None


def inferred_types(doc: ModelDocument) -> dict[str, TypeProto]:
    return resolve(doc).types


def _replace_by_initializers(model: ModelProto, folded: list[onnx.NodeProto], values: dict[str, np.ndarray]) -> None:
    drop = {id(n) for n in folded}
    keep = [n for n in model.graph.node if id(n) not in drop]
    del model.graph.node[:]
    model.graph.node.extend(keep)
    for name, value in values.items():
        model.graph.initializer.append(numpy_helper.from_array(value, name))


def classify(type_proto: TypeProto | None) -> tuple[str, list[str]]:
    """'static', 'symbolic' (with the dim names) or 'unknown' for one tensor."""
    if type_proto is None or type_proto.WhichOneof("value") != "tensor_type":
        return "unknown", []
    tensor_type = type_proto.tensor_type
    if not tensor_type.HasField("shape"):
        return "unknown", []
    names: list[str] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value >= 0:
            continue
        if dim.HasField("dim_param") and dim.dim_param and dim.dim_param != "?":
            names.append(dim.dim_param)
        else:
            return "unknown", []
    return ("symbolic", names) if names else ("static", [])


def shape_report(doc: ModelDocument) -> dict[str, Any]:
    """What an NPU toolkit needs to know before import: which tensors are not static, and why."""
    resolution = resolve(doc)
    types = resolution.types
    scope = doc.main
    graph = doc.model.graph
    entries: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for vi in graph.input:
        if vi.name not in scope.initializers:
            order.append(vi.name)
    for node in graph.node:
        order.extend(o for o in node.output if o)
    declared = {vi.name: vi.type for items in (graph.input, graph.value_info, graph.output) for vi in items}
    for name in order:
        status, dims = classify(types.get(name))
        entry: dict[str, Any] = {"status": status, "shape": shape_text(types.get(name))}
        if dims:
            entry["dims"] = dims
        written = shape_text(declared.get(name))
        if written is not None and written != entry["shape"]:
            entry["declared"] = written  # what the file says: a toolkit reads this, not our inference
            if status == "static":
                entry["status"] = "stale"
        producer = scope.index.producer.get(name)
        if producer is not None:
            entry["node"] = scope.node_id(producer)
        entries[name] = entry
    static = sum(1 for e in entries.values() if e["status"] == "static")
    not_static = len(entries) - static
    dynamic_inputs = _dynamic_input_dims(doc)
    data_dependent = _data_dependent(doc, entries, resolution, inputs_static=not dynamic_inputs)
    uninferred = [
        {"node": scope.node_id(n), "op_type": n.op_type, "domain": n.domain}
        for n in graph.node
        if n.domain not in ("", "ai.onnx") and any(not _known(entries[o]) for o in n.output if o in entries)
    ]
    post = post_processing(scope, doc.base_dir)
    covered = post is not None and {d["node"] for d in data_dependent} <= set(post["nodes"])
    return {
        "summary": f"all {static} tensors static"
        if not not_static
        else f"{not_static} of {len(entries)} tensors not static",
        "static": static,
        "total": len(entries),
        "all_static": static == len(entries),
        "dynamic_dims": dynamic_inputs,
        "tensors": entries,
        "data_dependent": data_dependent,
        "uninferred": uninferred,
        "suggested_cut": post if post and covered else _suggested_cut(doc, entries, data_dependent),
        "post_processing": post,
    }


def _dynamic_input_dims(doc: ModelDocument) -> dict[str, list[dict[str, Any]]]:
    """The graph inputs' dims without a size, by dim name ('?' for an unnamed one)."""
    dynamic_inputs: dict[str, list[dict[str, Any]]] = {}
    for vi in doc.model.graph.input:
        if vi.name in doc.main.initializers:
            continue
        for axis, dim in enumerate(vi.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            key = dim.dim_param or "?"
            dynamic_inputs.setdefault(key, []).append({"tensor": vi.name, "axis": axis})
    return dynamic_inputs


def _known(entry: dict[str, Any]) -> bool:
    """Inference tells the shape (static, or static with a stale declaration in the file)."""
    return entry["status"] in ("static", "stale")


def _data_dependent(
    doc: ModelDocument, entries: dict[str, dict[str, Any]], resolution: Resolution, inputs_static: bool
) -> list[dict]:
    """Nodes whose output shape depends on tensor values. Besides the ops that always do, once the
    inputs are static a standard op with static inputs and a non-static output is one of them
    (with dynamic inputs, such a shape may just follow a symbolic dim, so it is not flagged)."""
    scope = doc.main
    found = []
    for node in doc.model.graph.node:
        if node.output and all(o in resolution.constants for o in node.output if o):
            continue
        outs = [_known(entries[o]) for o in node.output if o in entries]
        ins = [_known(entries[t]) for t in node.input if t in entries]
        reason = None
        if node.op_type in DATA_DEPENDENT_OPS:
            reason = f"{node.op_type} output size depends on the data"
        elif (
            node.op_type == "TopK"
            and len(node.input) > 1
            and node.input[1] not in resolution.constants
            and node.input[1] not in scope.initializers
        ):
            reason = "TopK with a computed k"
        elif inputs_static and node.domain in ("", "ai.onnx") and outs and not all(outs) and all(ins):
            reason = f"{node.op_type} output shape is computed from tensor values"
        if reason:
            found.append({"node": scope.node_id(node), "op_type": node.op_type, "reason": reason})
    return found


def _suggested_cut(doc: ModelDocument, entries: dict[str, dict[str, Any]], data_dependent: list[dict]) -> dict | None:
    """Cut just before the data-dependent part: every static, computed tensor that a node downstream
    of a data-dependent node reads from the static part becomes an output (in graph order)."""
    if not data_dependent:
        return None
    scope = doc.main
    flagged = [scope.find_node(d["node"]) for d in data_dependent]
    tainted = {id(n) for n in scope.index.downstream(flagged)}
    frontier: set[str] = set()
    for node in doc.model.graph.node:
        if id(node) not in tainted:
            continue
        for t in node.input:
            producer = scope.index.producer.get(t)
            if (
                producer is not None
                and id(producer) not in tainted
                and producer.op_type != "Constant"
                and t in entries
                and _known(entries[t])
            ):
                frontier.add(t)
    outputs = [t for node in doc.model.graph.node for t in node.output if t in frontier]
    for vi in doc.model.graph.output:
        producer = scope.index.producer.get(vi.name)
        if (producer is None or id(producer) not in tainted) and vi.name not in outputs:
            outputs.append(vi.name)
    if not outputs:
        return None
    inputs = [vi.name for vi in doc.model.graph.input if vi.name not in scope.initializers]
    return {"outputs": outputs, "edit": {"op": "extract", "inputs": inputs, "outputs": outputs}}
