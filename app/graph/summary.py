"""A short description of a model: what `info` prints and what a new session answers with."""

from __future__ import annotations

from collections import Counter
from typing import Any

from onnx import ValueInfoProto

from .document import ModelDocument
from .io import has_external_data, weights_size
from .shapes import shape_text
from .values import dtype_name


def value_info_json(vi: ValueInfoProto) -> dict[str, Any]:
    """Name, dtype and shape of a graph input or output (dims: int, name, or null)."""
    kind = vi.type.WhichOneof("value")
    out: dict[str, Any] = {"name": vi.name}
    if kind == "tensor_type":
        out["dtype"] = dtype_name(vi.type.tensor_type.elem_type)
        out["shape"] = shape_text(vi.type)
    else:
        out["dtype"] = kind or "unknown"
        out["shape"] = None
    return out


def model_summary(doc: ModelDocument) -> dict[str, Any]:
    model = doc.model
    graph = model.graph
    initializers = doc.main.initializers
    nodes_total = sum(1 for _ in doc.walk())
    return {
        "ir_version": model.ir_version,
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "producer": " ".join(p for p in (model.producer_name, model.producer_version) if p),
        "graph_name": graph.name,
        "nodes": len(graph.node),
        "nodes_including_subgraphs": nodes_total,
        "op_types": dict(Counter(n.op_type for n in graph.node).most_common()),
        "inputs": [value_info_json(v) for v in graph.input if v.name not in initializers],
        "outputs": [value_info_json(v) for v in graph.output],
        "initializers": len(graph.initializer),
        "weights_bytes": weights_size(model),
        "external_data": has_external_data(model),
        "metadata": {p.key: p.value for p in model.metadata_props},
    }
