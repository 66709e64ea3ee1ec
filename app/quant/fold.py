"""Fold each layer's BatchNormalization and constant scale-and-shift into its Conv/ConvTranspose/Gemm.

A toolkit quantizes the folded weights (a BatchNormalization's per-channel scale widens a
per-tensor weight range), so the QDQ model that simulates it must quantize them too. The
folded model computes the same function in float; the folded nodes disappear and the layer's
Conv writes the tensor the last of them wrote.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, numpy_helper

from app.quant.layers import FOLDING_HEADS, node_names
from app.quant.model import ActivationTensor


def _attribute(node: NodeProto, name: str, default: float | int) -> float | int:
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def _channel_vector(value: np.ndarray, channels: int, rank: int, last_axis: bool) -> np.ndarray | None:
    """A constant as one value per output channel, if it broadcasts that way onto the layer's output."""
    value = np.asarray(value, dtype=np.float64)
    if value.size == 1:
        return np.full(channels, float(value.reshape(())))
    if value.size != channels:
        return None
    shape = value.shape
    wanted = (channels,) if last_axis else (channels,) + (1,) * (rank - 2)
    while len(shape) > len(wanted) and shape[0] == 1:
        shape = shape[1:]
    return value.reshape(-1) if shape == wanted else None


def _head_layout(head: NodeProto, w: np.ndarray) -> tuple[int, int, bool] | None:
    """(channel axis of the weight, output channels, channels last in the output) or None (not foldable)."""
    if _attribute(head, "group", 1) != 1 and head.op_type == "ConvTranspose":
        return None
    if head.op_type == "Conv":
        return 0, w.shape[0], False
    if head.op_type == "ConvTranspose":
        return 1, w.shape[1], False
    if _attribute(head, "alpha", 1.0) != 1.0 or _attribute(head, "beta", 1.0) != 1.0 or _attribute(head, "transA", 0):
        return None
    axis = 0 if _attribute(head, "transB", 0) else 1
    return axis, w.shape[axis], True


@dataclass
class _Fold:
    """One layer folded: its head's new weight and bias values, the nodes folded in, the tensor now written."""

    weight: str
    weight_value: np.ndarray
    bias_value: np.ndarray
    members: list[str]
    output: str


def fold_layers(
    model: ModelProto, points: list[ActivationTensor], values: dict[str, np.ndarray]
) -> tuple[ModelProto, dict[str, np.ndarray]]:
    """The model with each layer's BN and constant scale-and-shift folded into its head, and the folded
    values of the weights and biases that changed (by name; biases get new initializers)."""
    nodes = list(model.graph.node)
    names = node_names(nodes)
    by_name = dict(zip(names, nodes, strict=True))
    readers = Counter(name for node in nodes for name in node.input)
    removed: set[str] = set()
    folded: dict[str, np.ndarray] = {}
    rewired: dict[str, tuple[str, str]] = {}  # head name -> (new output, new bias name)
    for point in points:
        fold = _fold_layer(point, by_name, readers, values, folded)
        if fold is None:
            continue
        folded[fold.weight] = fold.weight_value
        bias = f"{point.nodes[0]}/folded_bias"
        folded[bias] = fold.bias_value
        removed.update(fold.members)
        rewired[point.nodes[0]] = (fold.output, bias)
    return _rewrite(model, nodes, names, removed, rewired, folded), folded


def _fold_layer(
    point: ActivationTensor,
    by_name: dict[str, NodeProto],
    readers: Counter[str],
    values: dict[str, np.ndarray],
    folded: dict[str, np.ndarray],
) -> _Fold | None:
    """The fold of one layer into its head, or None when its head or the node after it cannot be folded."""
    if not point.nodes or by_name[point.nodes[0]].op_type not in FOLDING_HEADS:
        return None
    head = by_name[point.nodes[0]]
    w_name = head.input[1] if len(head.input) > 1 else ""
    if w_name not in values or readers.get(w_name, 0) != 1 or w_name in folded:
        return None
    w = np.asarray(values[w_name], dtype=np.float64)
    layout = _head_layout(head, w)
    if layout is None:
        return None
    axis, channels, last = layout
    b_name = head.input[2] if len(head.input) > 2 else ""
    if b_name and (b_name not in values or readers.get(b_name, 0) != 1):
        return None
    b = np.asarray(values[b_name], dtype=np.float64).reshape(-1) if b_name else np.zeros(channels)
    if b.size != channels:
        return None
    scale = np.ones(channels)
    tensor, done = head.output[0], []
    for member in point.nodes[1:]:
        node = by_name[member]
        if readers.get(tensor, 0) != 1:  # the activation starts (x * gate(x) reads it twice)
            break
        step = _member_step(node, tensor, values, channels, w.ndim, last, scale, b)
        if step is None:
            break
        scale, b = step
        done.append(member)
        tensor = node.output[0]
    if not done:
        return None
    shape = [1] * w.ndim
    shape[axis] = channels
    return _Fold(w_name, (w * scale.reshape(shape)).astype(np.float32), b.astype(np.float32), done, tensor)


def _member_step(
    node: NodeProto,
    tensor: str,
    values: dict[str, np.ndarray],
    channels: int,
    rank: int,
    last: bool,
    scale: np.ndarray,
    b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The head's per-channel weight scale and bias with one more node of the layer folded in, or None when
    that node is not a BatchNormalization or a constant per-channel Mul/Add/Sub/Div of `tensor`."""
    if node.op_type == "BatchNormalization" and node.input[0] == tensor:
        gamma, beta, mean, var = (_channel_values(values, i, channels) for i in node.input[1:5])
        if gamma is None or beta is None or mean is None or var is None:
            return None
        a = gamma / np.sqrt(var + float(_attribute(node, "epsilon", 1e-5)))
        return scale * a, (b - mean) * a + beta
    if node.op_type in ("Mul", "Add", "Sub", "Div") and tensor in node.input:
        other = node.input[1] if node.input[0] == tensor else node.input[0]
        c = _channel_vector(values[other], channels, rank, last) if other in values else None
        if c is None:
            return None
        if node.op_type == "Mul":
            return scale * c, b * c
        if node.op_type == "Div":
            return scale / c, b / c
        return scale, b + c if node.op_type == "Add" else b - c
    return None


def _channel_values(values: dict[str, np.ndarray], name: str, channels: int) -> np.ndarray | None:
    """A BatchNormalization parameter as a float64 vector, or None when it is not a constant of `channels`."""
    if name not in values:
        return None
    value = np.asarray(values[name], dtype=np.float64).reshape(-1)
    return value if value.size == channels else None


def _rewrite(
    model: ModelProto,
    nodes: list[NodeProto],
    names: list[str],
    removed: set[str],
    rewired: dict[str, tuple[str, str]],
    folded: dict[str, np.ndarray],
) -> ModelProto:
    """A copy of the model without the folded nodes, each head writing its layer's last tensor with its new
    bias, the folded weights as new initializers, and the constants nothing reads any more dropped."""
    out = ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    orphans = {i for node in nodes if names[nodes.index(node)] in removed for i in node.input}
    kept = []
    for node, name in zip(graph.node, names, strict=True):
        if name in removed:
            continue
        node.name = name  # an unnamed node keeps its id (OpType_index of the model it came from)
        if name in rewired:
            tensor, bias = rewired[name]
            orphans.update(node.input[2:])
            node.output[0] = tensor
            inputs = [*node.input[:2], bias]
            del node.input[:]
            node.input.extend(inputs)
        kept.append(node)
    used = {i for node in kept for i in node.input} | {o.name for o in graph.output}
    unused = (orphans - used) | set(folded)  # folded weights come back as initializers
    del graph.node[:]
    graph.node.extend(n for n in kept if n.op_type != "Constant" or not set(n.output) & unused)
    initializers = [t for t in graph.initializer if t.name not in unused]
    del graph.initializer[:]
    graph.initializer.extend(initializers + [numpy_helper.from_array(v, k) for k, v in folded.items()])
    graph_inputs = [v for v in graph.input if v.name not in unused - set(folded)]
    del graph.input[:]
    graph.input.extend(graph_inputs)
    return out
