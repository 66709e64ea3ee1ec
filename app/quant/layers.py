"""The toolkit's layers: the ONNX nodes an NPU toolkit fuses into one quantized layer.

Acuity and RKNN quantize a layer's output once, after everything they fuse into it:
- Conv/ConvTranspose/Gemm with a following BatchNormalization and constant scale-and-shift
  (Mul/Add/Sub/Div by a constant), folded into the weights and bias;
- then one activation: Relu, Clip (Relu6), LeakyRelu, PRelu, HardSigmoid, HardSwish, and the
  exporters' spelled-out forms: HardSwish as x * Clip(x + 3, 0, 6) / 6 (Add -> Clip -> Mul -> Div,
  or with the Div before the Mul, or x * HardSigmoid(x)) and Swish/SiLU as x * Sigmoid(x);
- a run of constant scale-and-shift ops that follows anything else is one layer of its own.
Data-movement ops (Reshape, Transpose, Flatten, Squeeze/Unsqueeze, Slice, Split, MaxPool, nearest
Resize, Concat, ...) are no layer: their output keeps their input's quantization.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

import numpy as np
import onnx
from onnx import NodeProto

#: Ops that only move or select values: their outputs stay on their input's grid.
PASS_THROUGH = {
    "Reshape",
    "Transpose",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Slice",
    "Split",
    "MaxPool",
    "Concat",
    "Identity",
    "Dropout",
    "DepthToSpace",
    "SpaceToDepth",
    "Resize",
    "Upsample",
}
#: Ops a BatchNormalization and a constant scale-and-shift fold into.
FOLDING_HEADS = {"Conv", "ConvTranspose", "Gemm"}
#: Activations fused into the layer they follow.
ACTIVATIONS = {"Relu", "Clip", "LeakyRelu", "PRelu", "HardSigmoid", "HardSwish"}
#: Elementwise ops that are a scale-and-shift when one input is a constant.
AFFINE = {"Mul", "Add", "Sub", "Div"}


@dataclass(frozen=True)
class Layer:
    """A toolkit layer: its ONNX nodes (names, graph order) and the tensor quantized at its output."""

    output: str
    nodes: tuple[str, ...]
    op_type: str


def node_names(nodes: list[NodeProto]) -> list[str]:
    """Every node's name, or ``OpType_index`` for an unnamed node (the analysis' node ids)."""
    return [node.name or f"{node.op_type}_{index}" for index, node in enumerate(nodes)]


def _attribute(node: NodeProto, name: str, default: object) -> object:
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


class _Graph:
    """Readers and constant values of a graph, for the pattern checks."""

    def __init__(
        self, nodes: list[NodeProto], constants: set[str], values: dict[str, np.ndarray], outputs: set[str]
    ) -> None:
        self.constants = constants
        self.values = values
        self.outputs = outputs
        self.readers: dict[str, list[int]] = {}
        for index, node in enumerate(nodes):
            for name in node.input:
                if name:
                    self.readers.setdefault(name, []).append(index)

    def only_reader(self, tensor: str, nodes: list[NodeProto]) -> NodeProto | None:
        """The single node reading ``tensor`` (not a graph output), else None."""
        users = self.readers.get(tensor, [])
        if len(users) != 1 or tensor in self.outputs:
            return None
        return nodes[users[0]]

    def scalar(self, name: str) -> float | None:
        value = self.values.get(name)
        if value is None or value.size != 1:
            return None
        return float(value.reshape(()))

    def is_const(self, name: str) -> bool:
        return name in self.constants


def _is_affine(node: NodeProto, graph: _Graph, source: str) -> bool:
    """A Mul/Add/Sub/Div of ``source`` by a constant (Sub/Div only with the constant second)."""
    if node.op_type not in AFFINE or len(node.input) != 2 or source not in node.input:
        return False
    other = node.input[1] if node.input[0] == source else node.input[0]
    if node.op_type in ("Sub", "Div") and node.input[0] != source:
        return False
    return graph.is_const(other)


def _divides_by_six(node: NodeProto | None, graph: _Graph, source: str) -> TypeGuard[NodeProto]:
    if node is None or source not in node.input or len(node.input) != 2:
        return False
    other = node.input[1] if node.input[0] == source else node.input[0]
    value = graph.scalar(other)
    if node.op_type == "Div" and node.input[0] == source:
        return value is not None and abs(value - 6.0) < 1e-6
    return node.op_type == "Mul" and value is not None and abs(value - 1.0 / 6.0) < 1e-6


def _gate(node: NodeProto | None, graph: _Graph, nodes: list[NodeProto], source: str) -> list[NodeProto] | None:
    """Nodes of a HardSigmoid-like gate on ``source``: Add(+3) -> Clip(0, 6) [-> Div(6)], HardSigmoid, Sigmoid."""
    if node is None:
        return None
    if node.op_type in ("HardSigmoid", "Sigmoid"):
        return [node]
    if node.op_type != "Add" or not _is_affine(node, graph, source):
        return None
    other = node.input[1] if node.input[0] == source else node.input[0]
    three = graph.scalar(other)
    if three is None or abs(three - 3.0) > 1e-6:
        return None
    clip = graph.only_reader(node.output[0], nodes)
    if clip is None or clip.op_type != "Clip":
        return None
    chain = [node, clip]
    after = graph.only_reader(clip.output[0], nodes)
    if _divides_by_six(after, graph, clip.output[0]):
        chain.append(after)
    return chain


def _gated_activation(source: str, graph: _Graph, nodes: list[NodeProto]) -> list[NodeProto] | None:
    """x * gate(x), spelled out: HardSwish (with the /6 before or after the Mul) and Swish/SiLU."""
    users = [nodes[i] for i in graph.readers.get(source, [])]
    if len(users) != 2 or source in graph.outputs:
        return None
    for gate_head in users:
        mul = next((u for u in users if u is not gate_head), None)
        chain = _gate(gate_head, graph, nodes, source)
        if not chain or mul is None or mul.op_type != "Mul":
            continue
        gate_out = chain[-1].output[0]
        if set(mul.input) != {source, gate_out} or graph.only_reader(gate_out, nodes) is not mul:
            continue
        spelled_hardswish = chain[0].op_type == "Add"
        if spelled_hardswish and chain[-1].op_type == "Clip":  # the /6 comes after the Mul
            after = graph.only_reader(mul.output[0], nodes)
            if not _divides_by_six(after, graph, mul.output[0]):
                continue
            return [*chain, mul, after]
        return [*chain, mul]
    return None


def _is_pass_through(node: NodeProto, graph: _Graph) -> bool:
    if node.op_type not in PASS_THROUGH or not node.input or graph.is_const(node.input[0]):
        return False
    if node.op_type in ("Resize", "Upsample"):
        return _attribute(node, "mode", b"nearest") in (b"nearest", "nearest")
    return True


def toolkit_layers(
    nodes: list[NodeProto], wanted: set[str], constants: set[str], values: dict[str, np.ndarray], outputs: set[str]
) -> list[Layer]:
    """The layers of a graph, in graph order (data-movement nodes belong to none).

    ``wanted``: the float activation tensors that may be quantized; a layer ends at one of them.
    """
    graph = _Graph(nodes, constants, values, outputs)
    names = node_names(nodes)
    position = {id(node): index for index, node in enumerate(nodes)}
    absorbed: set[int] = set()
    layers: list[Layer] = []
    for index, head in enumerate(nodes):
        if index in absorbed or not head.output or not any(o in wanted for o in head.output):
            continue
        if _is_pass_through(head, graph):
            continue
        members = [head]
        tensor = head.output[0]
        folding = (
            head.op_type in FOLDING_HEADS
            or head.op_type == "BatchNormalization"
            or any(_is_affine(head, graph, source) for source in head.input[:2] if not graph.is_const(source))
        )
        activated = False
        chain: list[NodeProto] | None
        while len(head.output) == 1 and not activated:
            reader = graph.only_reader(tensor, nodes)
            if (
                reader is not None
                and folding
                and (reader.op_type == "BatchNormalization" or _is_affine(reader, graph, tensor))
            ):
                chain = [reader]
            elif reader is not None and reader.op_type in ACTIVATIONS and reader.input[0] == tensor:
                chain, activated = [reader], True
            else:
                chain = _gated_activation(tensor, graph, nodes)
                if chain is None:
                    break
                activated = True
            if any(position[id(n)] in absorbed for n in chain) or chain[-1].output[0] not in wanted:
                break
            members += chain
            absorbed.update(position[id(n)] for n in chain)
            tensor = chain[-1].output[0]
        for output in [tensor] if len(head.output) == 1 else [o for o in head.output if o in wanted]:
            if output in wanted:
                layers.append(Layer(output, tuple(names[position[id(n)]] for n in members), head.op_type))
    return layers
