"""Find a detector's post-processing tail and the cut that keeps only the network in front of it.

NPU toolkits run the convolutional network; NonMaxSuppression, TopK, the box decoding that feeds
them and the gathers of scores and boxes that follow them run on the CPU, whatever their shapes
(Acuity's and RKNN's conversion guides say to cut them off). The tail is found from its anchors
(NMS, TopK): everything downstream of an anchor, plus every node upstream of one whose results
feed only the tail and that is not a layer of the network itself (a Conv, a MatMul, ...).
"""
from __future__ import annotations

from typing import Any

from onnx import NodeProto

from .document import Scope
from .folding import is_constant_node

ANCHOR_OPS = {"NonMaxSuppression", "TopK"}
# layers that are the network's own work: the upward walk never takes them into the tail
NETWORK_OPS = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MatMul", "MatMulInteger", "QLinearMatMul",
               "Gemm", "FusedConv", "FusedMatMul", "LSTM", "GRU", "RNN", "BatchNormalization",
               "InstanceNormalization", "LayerNormalization", "GroupNormalization"}


def post_processing(scope: Scope) -> dict[str, Any] | None:
    """The tail's nodes (anchors first) and the extract edit that cuts just before it, or None."""
    graph = scope.graph
    anchors = [n for n in graph.node if n.op_type in ANCHOR_OPS and n.domain in ("", "ai.onnx")]
    if not anchors:
        return None
    tail = {id(n) for n in scope.index.downstream(anchors)} | {id(n) for n in anchors}
    outputs = set(scope.names["output"])
    changed = True
    while changed:  # grow upward: a node joins when all it computes goes to the tail
        changed = False
        for node in reversed(graph.node):
            if id(node) in tail or node.op_type in NETWORK_OPS or not node.output:
                continue
            users = [u for o in node.output if o for u in scope.index.users(o)]
            if users and all(id(u) in tail for u in users) and not any(o in outputs for o in node.output):
                tail.add(id(node))
                changed = True
    kept: list[str] = []
    for node in graph.node:
        if id(node) not in tail:
            continue
        for name in node.input:
            producer = scope.index.producer.get(name)
            if producer is not None and id(producer) not in tail and not is_constant_node(producer) \
                    and name not in kept:
                kept.append(name)
    for vi in graph.output:
        producer = scope.index.producer.get(vi.name)
        if (producer is None or id(producer) not in tail) and vi.name not in kept:
            kept.append(vi.name)
    if not kept:
        return None
    nodes = [n for n in graph.node if id(n) in tail]
    inputs = [vi.name for vi in graph.input if vi.name not in scope.initializers]
    return {"anchors": [_describe(scope, n) for n in anchors],
            "nodes": [scope.node_id(n) for n in nodes],
            "outputs": kept,
            "edit": {"op": "extract", "inputs": inputs, "outputs": kept}}


def _describe(scope: Scope, node: NodeProto) -> dict[str, str]:
    return {"node": scope.node_id(node), "op_type": node.op_type}
