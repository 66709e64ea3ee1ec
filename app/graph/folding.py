"""Computing the parts of a graph that do not depend on the model's inputs.

Shared by the fold_constants edit and the static-shape report: both need the values of constant
sub-computations, the report in particular those of shape computations (Shape -> Gather ->
Concat -> Reshape) once the input shapes are fixed. Values are computed by onnxruntime on a small
model holding only the foldable nodes (onnx's reference evaluator when onnxruntime refuses).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx
from onnx import GraphProto, NodeProto, TensorProto, TypeProto, helper, numpy_helper

from .guard import element_count
from .index import has_subgraphs

NOT_FOLDABLE = {
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
    "If",
    "Loop",
    "Scan",
    "SequenceConstruct",
    "SequenceEmpty",
}
STANDARD = ("", "ai.onnx")
DEFAULT_SIZE_LIMIT = 64 * 1024 * 1024


def is_constant_node(node: NodeProto) -> bool:
    """onnx's own Constant (a custom domain may reuse the op name for something else)."""
    return node.op_type == "Constant" and node.domain in STANDARD


def shape_text(type_proto: TypeProto | None) -> list[int | str | None] | None:
    """A shape as JSON: ints, dim names, null for unknown; None when not even the rank is known."""
    if type_proto is None or type_proto.WhichOneof("value") != "tensor_type":
        return None
    tensor_type = type_proto.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [
        (d.dim_value if d.dim_value >= 0 else None) if d.HasField("dim_value") else (d.dim_param or None)
        for d in tensor_type.shape.dim
    ]  # -1 (an exporter's "unknown") is unknown


def static_dims(type_proto: TypeProto | None) -> list[int] | None:
    """The shape of a tensor type when every dim is a known size."""
    dims = shape_text(type_proto)
    if dims is None or not all(isinstance(d, int) and d >= 0 for d in dims):
        return None
    return dims  # type: ignore[return-value]


def _shape_value(node: NodeProto, dims: list[int]) -> np.ndarray:
    rank = len(dims)
    start, end = 0, rank
    for attr in node.attribute:
        if attr.name == "start":
            start = attr.i
        elif attr.name == "end":
            end = attr.i
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return np.array(dims[start:end], dtype=np.int64)


def fold(
    graph: GraphProto,
    opsets: Mapping[str, int],
    ir_version: int,
    known: Mapping[str, np.ndarray],
    types: Mapping[str, TypeProto],
    is_input: Callable[[str], bool],
    size_limit: int = DEFAULT_SIZE_LIMIT,
) -> tuple[list[NodeProto], dict[str, np.ndarray]]:
    """The nodes whose outputs can be computed now, and those outputs' values.

    `known` holds the values available (constants); `types` the inferred types, which let Shape
    and Size of statically shaped tensors count as constants; `is_input` marks graph inputs,
    which are never constant even when they have a default (an initializer of the same name).
    """
    foldable: list[NodeProto] = []
    direct: list[NodeProto] = []  # Shape/Size answered from types alone
    values: dict[str, np.ndarray] = {}
    available = set(known)
    for node in graph.node:
        if node.domain not in STANDARD or node.op_type in NOT_FOLDABLE or has_subgraphs(node):
            continue
        if node.op_type in ("Shape", "Size") and node.input:
            dims = static_dims(types.get(node.input[0]))
            if dims is not None and node.output and node.output[0] not in available:
                value = (
                    _shape_value(node, dims)
                    if node.op_type == "Shape"
                    else np.array(int(np.prod(dims)), dtype=np.int64)
                )
                values[node.output[0]] = value
                available.add(node.output[0])
                direct.append(node)
                continue
        reads = [t for t in node.input if t]
        if not all(t in available and not is_input(t) for t in reads):
            continue
        if any(_too_big(types.get(o), size_limit) for o in node.output if o):
            continue
        if node.op_type == "Constant" and not node.input:
            continue  # already a constant; folding it would only move it
        foldable.append(node)
        available.update(o for o in node.output if o)
    if foldable:
        values.update(_evaluate(foldable, opsets, ir_version, lambda t: values[t] if t in values else known[t], types))
    evaluated = [n for n in foldable if all(o in values for o in n.output if o)]
    return direct + evaluated, values


def _too_big(type_proto: TypeProto | None, limit: int) -> bool:
    dims = static_dims(type_proto)
    if dims is None or type_proto is None:
        return False
    itemsize = 8
    try:
        itemsize = helper.tensor_dtype_to_np_dtype(type_proto.tensor_type.elem_type).itemsize
    except (KeyError, TypeError, ValueError):
        pass
    return element_count(dims) * itemsize > limit


def _evaluate(
    nodes: list[NodeProto],
    opsets: Mapping[str, int],
    ir_version: int,
    value_of: Callable[[str], np.ndarray],
    types: Mapping[str, TypeProto],
) -> dict[str, np.ndarray]:
    produced = {o for n in nodes for o in n.output if o}
    needed = {t for n in nodes for t in n.input if t and t not in produced}
    wanted = [o for n in nodes for o in n.output if o]
    graph = helper.make_graph(
        nodes,
        "fold",
        [],
        [helper.make_empty_tensor_value_info(o) for o in wanted],
        [numpy_helper.from_array(np.asarray(value_of(t)), t) for t in sorted(needed)],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()], ir_version=ir_version
    )
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # an evaluator below gets its own chance
        pass
    for out in model.graph.output:
        if out.type.WhichOneof("value") is None and out.name in types:
            out.type.CopyFrom(types[out.name])
    from app.runtime.errors import RuntimeFailure
    from app.runtime.session import open_session, run

    results: Any
    try:
        results = run(open_session(model), wanted, {})
    except RuntimeFailure:
        try:
            from onnx.reference import ReferenceEvaluator

            results = ReferenceEvaluator(model).run(wanted, {})
        except Exception:
            return {}
    return {name: np.asarray(value) for name, value in zip(wanted, results, strict=True)}


def constant_tensor(node: NodeProto) -> TensorProto | None:
    """A Constant node's value as a tensor (its `value`, or a value_float(s)/value_int(s) made one)."""
    for attr in node.attribute:
        if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
            return attr.t
        if attr.name in ("value_int", "value_float", "value_ints", "value_floats"):
            value = helper.get_attribute_value(attr)
            return numpy_helper.from_array(np.array(value, dtype=np.int64 if "int" in attr.name else np.float32))
    return None


def constant_node_value(node: NodeProto, max_bytes: int | None = None) -> np.ndarray | None:
    """The value of a Constant node (any of its value_* forms), None when too big or external."""
    tensor = constant_tensor(node)
    if tensor is None or tensor.data_location == TensorProto.EXTERNAL or (max_bytes and tensor.ByteSize() > max_bytes):
        return None
    return numpy_helper.to_array(tensor)
