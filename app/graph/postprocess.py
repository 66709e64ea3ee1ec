"""Find a detector's post-processing tail and the cut that keeps only the network in front of it.

NPU toolkits run the convolutional network; NonMaxSuppression, TopK, the box decoding that feeds
them and the gathers of scores and boxes that follow them run on the CPU, whatever their shapes
(Acuity's and RKNN's conversion guides say to cut them off). The tail is found from its anchors
(NMS, TopK, and the DFL projection of anchor-free heads): everything downstream of an anchor, plus every
node upstream of one whose results feed only the tail and that is not a layer of the network itself (a Conv,
a MatMul, ...), except the fixed 0..n-1 projection that decodes a box side from its distribution (DFL).
A tensor the tail only reads the shape of is not kept: the shape arithmetic goes with the tail.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from onnx import NodeProto

from .document import Scope
from .errors import WorkbenchError
from .folding import is_constant_node
from .io import read_tensor
from .weights import weight_tensor

ANCHOR_OPS = {"NonMaxSuppression", "TopK"}
# layers that are the network's own work: the upward walk never takes them into the tail
NETWORK_OPS = {
    "Conv",
    "ConvTranspose",
    "ConvInteger",
    "QLinearConv",
    "MatMul",
    "MatMulInteger",
    "QLinearMatMul",
    "Gemm",
    "FusedConv",
    "FusedMatMul",
    "LSTM",
    "GRU",
    "RNN",
    "BatchNormalization",
    "InstanceNormalization",
    "LayerNormalization",
    "GroupNormalization",
}
SHAPE_READS = {"Shape", "Size"}
MAX_BINS = 1024  # the most bins of a box-side distribution


def post_processing(scope: Scope, base_dir: Path | None) -> dict[str, Any] | None:
    """The tail's nodes (anchors first) and the extract edit that cuts just before it, or None."""
    graph = scope.graph
    anchors = [
        n
        for n in graph.node
        if n.domain in ("", "ai.onnx")
        and (n.op_type in ANCHOR_OPS or n.op_type in NETWORK_OPS and _is_expectation(scope, n, base_dir))
    ]
    if not anchors:
        return None
    tail = {id(n) for n in scope.index.downstream(anchors)} | {id(n) for n in anchors}
    outputs = set(scope.names["output"])
    changed = True
    while changed:  # grow upward: a node joins when all it computes goes to the tail
        changed = False
        for node in reversed(graph.node):
            if (
                id(node) in tail
                or not node.output
                or node.op_type in NETWORK_OPS
                and not _is_expectation(scope, node, base_dir)
            ):
                continue
            users = [u for o in node.output if o for u in scope.index.users(o)]
            if users and all(id(u) in tail for u in users) and not any(o in outputs for o in node.output):
                tail.add(id(node))
                changed = True
    kept: list[str] = []
    for node in graph.node:
        if id(node) not in tail or node.op_type in SHAPE_READS:
            continue  # reading a tensor's shape does not need the tensor: it stays inside the cut
        for name in node.input:
            producer = scope.index.producer.get(name)
            if (
                producer is not None
                and id(producer) not in tail
                and not is_constant_node(producer)
                and name not in kept
            ):
                kept.append(name)
    for vi in graph.output:
        producer = scope.index.producer.get(vi.name)
        if (producer is None or id(producer) not in tail) and vi.name not in kept:
            kept.append(vi.name)
    if not kept:
        return None
    nodes = [n for n in graph.node if id(n) in tail]
    inputs = [vi.name for vi in graph.input if vi.name not in scope.initializers]
    return {
        "anchors": [_describe(scope, n) for n in anchors],
        "nodes": [scope.node_id(n) for n in nodes],
        "outputs": kept,
        "edit": {"op": "extract", "inputs": inputs, "outputs": kept},
    }


def _is_expectation(scope: Scope, node: NodeProto, base_dir: Path | None) -> bool:
    """A Conv or MatMul whose weight is 0, 1, ..., n-1: the expectation over a softmax that decodes a box
    side from its distribution (the DFL of YOLOv8, YOLO11, PP-YOLOE, PicoDet), decoding, not a layer."""
    if len(node.input) < 2:
        return False
    weight = weight_tensor(scope, node.input[1])
    if weight is None or not 2 <= math.prod(weight.dims) <= MAX_BINS:
        return False
    try:
        values = read_tensor(weight, base_dir).reshape(-1)
    except (WorkbenchError, OSError, ValueError):  # unreadable weights decide nothing here
        return False
    return bool(np.array_equal(values, np.arange(values.size, dtype=values.dtype)))


def _describe(scope: Scope, node: NodeProto) -> dict[str, str]:
    kind = node.op_type if node.op_type in ANCHOR_OPS else "DFL box decoding"
    return {"node": scope.node_id(node), "op_type": node.op_type, "kind": kind}
