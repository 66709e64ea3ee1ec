"""QDQ export: QuantizeLinear/DequantizeLinear pairs on activations, DequantizeLinear on weights.

Activations keep their tensor names (the producer's output is renamed and the DQ output
takes the old name), so consumers, subgraphs and graph outputs need no rewiring. Standard
ops are used where the model's opset allows (8-bit from opset 10, per-axis from 13, int16
from 21); otherwise onnxruntime's com.microsoft Q/DQ ops, which onnxruntime runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper, version_converter

from app.quant.grids import ActivationQuant, WeightQuant
from app.quant.model import WeightTensor, opset_version
from app.quant.quantizers import Quantizer, bias_scale
from app.quant.weights import channel_params, quantize

MS_DOMAIN = "com.microsoft"


def _domain(opset: int, quantizer: Quantizer, per_axis: bool) -> str:
    if quantizer.numpy_type is np.int16:
        return "" if opset >= 21 else MS_DOMAIN
    if per_axis:
        return "" if opset >= 13 else MS_DOMAIN
    return "" if opset >= 10 else MS_DOMAIN


class _Names:
    """Fresh tensor names that cannot clash with the model's."""

    def __init__(self, model: ModelProto) -> None:
        self.used = {t.name for t in model.graph.initializer} | {v.name for v in model.graph.input}
        for node in model.graph.node:
            self.used.update(node.input)
            self.used.update(node.output)

    def __call__(self, base: str) -> str:
        name, k = base, 1
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name


#: QDQ models are written at least at this opset: per-axis DequantizeLinear is standard from 13,
#: and onnxruntime's graph optimizer adds such nodes (for Conv biases) whatever the model's opset,
#: so an opset-12 QDQ model only loads in onnxruntime with its optimizations off.
QDQ_MIN_OPSET = 13


def qdq_opset(model: ModelProto) -> ModelProto:
    """The float model converted to QDQ_MIN_OPSET if it is older (unchanged if it cannot be converted,
    e.g. custom ops or over 2 GB: such a QDQ model then needs onnxruntime's optimizations off)."""
    if opset_version(model) >= QDQ_MIN_OPSET:
        return model
    try:
        return version_converter.convert_version(model, QDQ_MIN_OPSET)
    except Exception:  # the converter raises RuntimeError, ValueError, ConvertError, ...
        return model


#: Largest bias an int32 holds: a toolkit's 8-bit layers clip there, its 16-bit layers hold the bias in
#: 64 bits (Acuity's i16 files); onnxruntime's optimizer turns a float bias into int32 and wraps beyond.
INT32_MAX = 2**31 - 1
#: Heads whose third input is a bias at input scale x weight scale.
BIASED = {"Conv", "ConvTranspose", "Gemm"}


def input_grid(
    tensor: str, activations: dict[str, ActivationQuant], producers: dict[str, NodeProto]
) -> ActivationQuant | None:
    """The grid a tensor is on: its own, or through data movement (no point of its own) its source's."""
    seen = set()
    while tensor not in activations:
        node = producers.get(tensor)
        if node is None or not node.input or tensor in seen:
            return None
        seen.add(tensor)
        tensor = node.input[0]
    return activations[tensor]


def bias_on_grid(bias: np.ndarray, grid: ActivationQuant, w: np.ndarray, wq: WeightQuant) -> tuple[np.ndarray, bool]:
    """The bias rounded to the grid the layer adds it on (input scale x weight scale), in float32: int32
    (clipped) in an 8-bit layer, 64 bits in a 16-bit one; and whether it lies beyond int32."""
    w_scale, _ = channel_params(wq.quantizer, w, wq.axis)
    scale = bias_scale(grid.params[0], w_scale).reshape(-1)
    if scale.size > 1 and bias.shape != scale.shape:
        return bias, False
    scale = scale if scale.size > 1 else scale[0]
    q = np.rint(bias.astype(np.float64) / scale)
    if wq.quantizer.bits <= 8:
        q = np.clip(q, -INT32_MAX - 1, INT32_MAX)
    return (q * scale).astype(np.float32), bool(np.abs(q).max(initial=0) > INT32_MAX)


def bias_values(model: ModelProto, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The float32 biases of the model's Conv/ConvTranspose/Gemm, taken from its constant ``values``."""
    names = {node.input[2] for node in model.graph.node if node.op_type in BIASED and len(node.input) > 2}
    return {name: values[name] for name in names if name in values and values[name].dtype == np.float32}


def _quantize_biases(
    nodes: list[NodeProto],
    activations: dict[str, ActivationQuant],
    weights: dict[str, tuple[WeightTensor, WeightQuant]],
    weight_values: dict[str, np.ndarray],
    biases: dict[str, np.ndarray],
    const: Callable[[str, np.ndarray], str],
    names: _Names,
) -> list[NodeProto]:
    """The nodes with each layer's bias on its toolkit grid (see ``build_qdq_model``)."""
    producers = {out: node for node in nodes for out in node.output}
    result = []
    for node in nodes:
        result.append(node)
        if (
            node.op_type not in BIASED
            or len(node.input) < 3
            or node.input[1] not in weights
            or node.input[2] not in biases
        ):
            continue
        grid = input_grid(node.input[0], activations, producers)
        if grid is None:
            continue
        w = weight_values[node.input[1]]
        rounded, beyond_int32 = bias_on_grid(biases[node.input[2]], grid, w, weights[node.input[1]][1])
        if not beyond_int32:
            node.input[2] = const(f"{node.input[2]}/on_grid", rounded)
            continue
        out = node.output[0]  # the bias is added after the layer, where the optimizer leaves it in float
        node.output[0] = names(f"{out}/without_bias")
        inputs = list(node.input[:2])
        del node.input[:]
        node.input.extend(inputs)
        shape = (-1,) if node.op_type == "Gemm" else (-1,) + (1,) * (w.ndim - 2)
        result.append(
            helper.make_node(
                "Add",
                [node.output[0], const(f"{out}/bias", rounded.reshape(shape))],
                [out],
                name=names(f"{out}/bias_add"),
            )
        )
    return result


class _QdqBuilder:
    """The new nodes and initializers of one QDQ model: fresh names, Q/DQ pairs, and with a gate the If
    that switches each pair on its flag."""

    def __init__(self, model: ModelProto, gate: str | None, gated: list[str]) -> None:
        self.opset = opset_version(model)
        self.names = _Names(model)
        self.gate = gate
        self.gate_index = {name: k for k, name in enumerate(gated)}
        self.initializers: list[TensorProto] = []
        self.uses_ms = False  # a com.microsoft Q/DQ op was used: the model must import that domain

    def const(self, base: str, value: np.ndarray) -> str:
        """A new initializer holding ``value``, under a fresh name made from ``base``."""
        name = self.names(base)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def activation(self, source: str, target: str, aq: ActivationQuant) -> list[NodeProto]:
        """``target`` as ``source`` quantized and dequantized on ``aq``'s grid (switched with a gate)."""
        names = self.names
        scale, zero_point = aq.params
        domain = self._domain(aq.quantizer, False)
        s = self.const(f"{target}/scale", np.array(scale, dtype=np.float32))
        z = self.const(f"{target}/zero_point", np.array(zero_point, dtype=aq.quantizer.numpy_type))
        q = names(f"{target}/quantized")
        pair = [
            helper.make_node(
                "QuantizeLinear", [source, s, z], [q], name=names(f"{target}/QuantizeLinear"), domain=domain
            ),
            helper.make_node(
                "DequantizeLinear",
                [q, s, z],
                [names(f"{target}/dequantized")] if self.gate else [target],
                name=names(f"{target}/DequantizeLinear"),
                domain=domain,
            ),
        ]
        return pair if self.gate is None else self.switch(pair, source, target)

    def weight(self, name: str, w: np.ndarray, wq: WeightQuant) -> list[NodeProto]:
        """The weight as an integer initializer and a DequantizeLinear that outputs its name (switched
        between it and the float weight with a gate)."""
        scale, zero_point = channel_params(wq.quantizer, w, wq.axis)
        per_axis = wq.axis is not None
        domain = self._domain(wq.quantizer, per_axis)
        qw = self.const(f"{name}/quantized", quantize(wq.quantizer, w, scale, zero_point, wq.axis))
        s = self.const(f"{name}/scale", scale if per_axis else scale.reshape(()))
        zp: np.ndarray = zero_point.astype(wq.quantizer.numpy_type)
        z = self.const(f"{name}/zero_point", zp if per_axis else zp.reshape(()))
        attrs: dict[str, Any] = {"axis": wq.axis} if per_axis else {}
        restored = self.names(f"{name}/dequantized") if self.gate else name
        dq = helper.make_node(
            "DequantizeLinear",
            [qw, s, z],
            [restored],
            name=self.names(f"{name}/DequantizeLinear"),
            domain=domain,
            **attrs,
        )
        return self.switch([dq], self.const(f"{name}/float", w), name) if self.gate else [dq]

    def switch(self, quantized: list[NodeProto], source: str, target: str) -> list[NodeProto]:
        """``target`` from an If on its gate flag: the quantized nodes' value, or ``source`` as it is."""
        assert self.gate is not None
        names = self.names
        flag = names(f"{target}/gate")
        index = self.const(f"{target}/gate_index", np.array(self.gate_index[target], dtype=np.int64))
        branch = helper.make_graph(
            quantized,
            names(f"{target}/quantized_branch"),
            [],
            [helper.make_tensor_value_info(quantized[-1].output[0], TensorProto.FLOAT, None)],
        )
        kept = names(f"{target}/kept")
        skip = helper.make_graph(
            [helper.make_node("Identity", [source], [kept])],
            names(f"{target}/float_branch"),
            [],
            [helper.make_tensor_value_info(kept, TensorProto.FLOAT, None)],
        )
        return [
            helper.make_node("Gather", [self.gate, index], [flag], name=names(f"{target}/Gather")),
            helper.make_node("If", [flag], [target], name=names(f"{target}/If"), then_branch=branch, else_branch=skip),
        ]

    def _domain(self, quantizer: Quantizer, per_axis: bool) -> str:
        domain = _domain(self.opset, quantizer, per_axis)
        self.uses_ms |= domain == MS_DOMAIN
        return domain


def build_qdq_model(
    model: ModelProto,
    activations: dict[str, ActivationQuant],
    weights: dict[str, tuple[WeightTensor, WeightQuant]],
    weight_values: dict[str, np.ndarray],
    biases: dict[str, np.ndarray] | None = None,
    gate: str | None = None,
) -> ModelProto:
    """A new model with the given activations and weights quantized (QDQ form).

    ``gate``: the name of a bool graph input, one flag per activation in the order of ``activations``,
    then one per weight in the order of ``weights``; each Q/DQ pair (DQ for a weight) then sits in an If
    on its flag, so one onnxruntime session measures any subset of them quantized (onnxruntime runs
    only the branch taken). Biases are not rounded then.

    ``biases`` (see ``bias_values``): each Conv/ConvTranspose/Gemm bias is rounded onto its toolkit grid (input scale
    x weight scale; for dynamic fixed point fl_in + fl_w) and stored in float. One beyond int32 there
    (16-bit layers) is added after the layer instead: onnxruntime's optimizer would turn it into an
    int32 and wrap it around (test_qdq_runtime), so the exported model runs as measured.
    """
    out = ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    gated = [*activations, *(weights if gate else ())]
    build = _QdqBuilder(model, gate, gated)
    head, weight_switches = _quantize_weights(build, weights, weight_values)
    kept_initializers = [t for t in graph.initializer if t.name not in weights]
    kept_inputs = [v for v in graph.input if v.name not in weights]

    renamed_inputs = _quantize_inputs(build, [v.name for v in kept_inputs], activations, head)

    nodes = list(graph.node)
    if biases and gate is None:
        nodes = _quantize_biases(nodes, activations, weights, weight_values, biases, build.const, build.names)
    body = _quantized_body(nodes, build, activations, renamed_inputs, weight_switches, set(weights))
    for switched in weight_switches.values():  # read only inside subgraphs: before everything
        head += switched
    if biases and gate is None:  # the float biases replaced by their rounded copies
        used = {name for node in head + body for name in node.input}
        body = [n for n in body if n.op_type != "Constant" or n.output[0] not in biases or n.output[0] in used]
        kept_initializers = [t for t in kept_initializers if t.name in used or t.name not in biases]
    del graph.node[:]
    graph.node.extend(head + body)
    del graph.initializer[:]
    graph.initializer.extend(kept_initializers + build.initializers)
    del graph.input[:]
    graph.input.extend(kept_inputs)
    if gate is not None:
        graph.input.append(helper.make_tensor_value_info(gate, TensorProto.BOOL, [len(gated)]))
    out.ir_version = max(out.ir_version, 7)  # initializers need not be listed as inputs from IR 4 on
    if build.uses_ms and not any(o.domain == MS_DOMAIN for o in out.opset_import):
        out.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return out


def _quantize_weights(
    build: _QdqBuilder, weights: dict[str, tuple[WeightTensor, WeightQuant]], weight_values: dict[str, np.ndarray]
) -> tuple[list[NodeProto], dict[str, list[NodeProto]]]:
    """Each weight's DequantizeLinear, for the head of the graph; with a gate, each weight's If instead,
    to be placed before its first reader (a staged run then starts near the layer)."""
    head: list[NodeProto] = []
    switches: dict[str, list[NodeProto]] = {}
    for name, (_, wq) in weights.items():
        dq = build.weight(name, weight_values[name], wq)
        if build.gate:
            switches[name] = dq
        else:
            head += dq
    return head, switches


def _quantize_inputs(
    build: _QdqBuilder, inputs: list[str], activations: dict[str, ActivationQuant], head: list[NodeProto]
) -> dict[str, str]:
    """Q/DQ of each quantized graph input into a new name, appended to ``head``; the new name of each, to
    which its readers are pointed."""
    renamed = {}
    for name in inputs:
        if name in activations:
            target = build.names(f"{name}/dequantized")
            build.gate_index[target] = build.gate_index[name]
            head += build.activation(name, target, activations[name])
            renamed[name] = target
    return renamed


def _quantized_body(
    nodes: list[NodeProto],
    build: _QdqBuilder,
    activations: dict[str, ActivationQuant],
    renamed_inputs: dict[str, str],
    weight_switches: dict[str, list[NodeProto]],
    weight_names: set[str],
) -> list[NodeProto]:
    """The model's nodes in order with a Q/DQ pair after each quantized activation (its producer writes a
    new name, the pair's DQ the old one), readers of quantized graph inputs pointed at their DQ, each gated
    weight's switch before its first reader, and the Constant nodes of quantized weights left out."""
    body: list[NodeProto] = []
    for node in nodes:
        if node.op_type == "Constant" and node.output and node.output[0] in weight_names:
            continue
        for k, name in enumerate(node.input):
            if name in renamed_inputs:
                node.input[k] = renamed_inputs[name]
            body += weight_switches.pop(name, [])
        tail = []
        for k, name in enumerate(node.output):
            if name in activations and name not in renamed_inputs:
                source = build.names(f"{name}/float")
                node.output[k] = source
                tail += build.activation(source, name, activations[name])
        body.append(node)
        body += tail
    return body
