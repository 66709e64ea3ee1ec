"""The quantization plan in the toolkit's own files: Acuity's ``.quantize`` and RKNN's ``.quantization.cfg``.

Both are YAML in the published shape (Khadas' Acuity demo ``mobilenet_tf.quantize``; RKNN-Toolkit2's
``hybrid_quantization_step1`` output): every layer's parameters and, for a mixed precision, the layers
the user hands back to the toolkit in another precision (Acuity: ``customized_quantize_layers`` then
``pegasus quantize --hybrid``; RKNN: ``custom_quantize_layers`` then ``hybrid_quantization_step2``).

Names: RKNN keys its file by tensor names, and those of an ONNX model survive its import, so the cfg
uses the ONNX tensor names. Acuity keys layers by its own names given at import; no public source
shows the rule for ONNX models, so the ``.quantize`` uses the ONNX node name of each layer's first
node (its Conv, for a fused layer), and says so in its header.
"""

from __future__ import annotations

import numpy as np
import yaml
from onnx import NodeProto

from app.quant.analysis import QuantAnalysis
from app.quant.errors import QuantError
from app.quant.layers import node_names
from app.quant.qdq import BIASED, ActivationQuant, WeightQuant, input_grid
from app.quant.quantizers import bias_scale
from app.quant.toolkits import Precision
from app.quant.weights import channel_params


class _Dumper(yaml.SafeDumper):
    """Block mappings, lists in one line: the layout of the toolkits' own files."""


_Dumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


def _dump(document: dict) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def _ints(values: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def _fl(scale: np.ndarray) -> list[int]:
    return _ints(np.rint(-np.log2(np.asarray(scale, dtype=np.float64))))


def _extremes(w: np.ndarray, axis: int | None) -> tuple[list[float], list[float]]:
    """Minimum and maximum of a weight, one per channel along ``axis`` (one in all for None)."""
    rows = w.reshape(1, -1) if axis is None else np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    return _floats(rows.min(axis=1)), _floats(rows.max(axis=1))


class _Plan:
    """Per layer of a configuration: its precision, output grid, weights and bias, in toolkit terms."""

    def __init__(self, analysis: QuantAnalysis, activations: dict[str, ActivationQuant], toolkit: str) -> None:
        if analysis.toolkit.name != toolkit:
            raise QuantError(
                f"the analysis simulated {analysis.toolkit.name}; run it with target {toolkit} to "
                f"write {toolkit}'s file"
            )
        self.analysis = analysis
        self.profile = analysis.toolkit
        self.activations = activations
        self.weights = analysis.weight_grids(activations)
        model = analysis.folded_model or analysis.model
        self.nodes = dict(zip(node_names(list(model.graph.node)), model.graph.node, strict=True))
        self.producers = {out: node for node in model.graph.node for out in node.output}

    def precision(self, aq: ActivationQuant) -> Precision:
        return self.profile.tier(self.profile.tier_of(aq.quantizer, weights=False))

    def points(self) -> list[tuple[str, list[str], ActivationQuant]]:
        """(tensor, layer nodes, grid) of every quantization point, in graph order."""
        return [(name, list(t.stats.tensor.nodes), self.activations[name]) for name, t in self.analysis.tensors.items()]

    def head(self, nodes: list[str]) -> NodeProto | None:
        """The layer's weighted head node (in the model as the toolkit quantizes it), if any."""
        node = self.nodes.get(nodes[0]) if nodes else None
        return (
            node
            if node is not None and node.op_type in BIASED and len(node.input) > 1 and node.input[1] in self.weights
            else None
        )

    def weight(self, head: NodeProto) -> tuple[str, WeightQuant, np.ndarray, np.ndarray, np.ndarray]:
        """The head's weight: name, grid, (folded) values, scales and zero points."""
        name = head.input[1]
        _, wq = self.weights[name]
        w = self.analysis.weight_values[name]
        return (name, wq, w, *channel_params(wq.quantizer, w, wq.axis))

    def bias_scale(self, head: NodeProto) -> np.ndarray | None:
        """Scale of the head's bias: input scale x weight scale (None: no bias, or an input off any grid)."""
        grid = input_grid(head.input[0], self.activations, self.producers)
        if len(head.input) < 3 or not head.input[2] or grid is None:
            return None
        _, wq = self.weights[head.input[1]]
        w_scale, _ = channel_params(wq.quantizer, self.analysis.weight_values[head.input[1]], wq.axis)
        return bias_scale(grid.params[0], w_scale).reshape(-1)

    def mixed(self) -> list[tuple[str, list[str], ActivationQuant]]:
        """The points in the 16-bit precision when the configuration mixes precisions (else none)."""
        high = [p for p in self.points() if p[2].quantizer == self.profile.tier("int16").activation]
        return high if len(high) < len(self.activations) else []


def _acuity_entry(
    precision: Precision,
    extremes: tuple[list[float], list[float]] | None,
    scale: np.ndarray,
    zero_point: np.ndarray,
    per_channel: bool,
    qtype: str | None = None,
) -> dict:
    """One ``quantize_parameters`` entry: dtype, method, max/min (none for a bias), fl or scale/zero_point, qtype."""
    entry: dict = {"dtype": precision.scheme, "method": "channel" if per_channel else "layer"}
    if extremes is not None:
        lo, hi = extremes
        entry["max_value"], entry["min_value"] = (hi, lo) if per_channel else (hi[0], lo[0])
    if precision.activation.power_of_two:
        entry["fl"] = _fl(scale)
    else:
        entry["zero_point"] = _ints(zero_point)
        entry["scale"] = _floats(scale)
    entry["qtype"] = qtype or precision.itype
    return entry


def acuity_quantize(analysis: QuantAnalysis, label: str, activations: dict[str, ActivationQuant] | None = None) -> str:
    """The ``.quantize`` file of a configuration (or of an explicit per-tensor precision)."""
    plan = _Plan(analysis, activations if activations is not None else analysis.precision(label), "acuity")
    parameters: dict = {}
    for tensor, nodes, aq in plan.points():
        layer = nodes[0] if nodes else tensor
        precision = plan.precision(aq)
        scale, zero_point = aq.params
        parameters[f"@{layer}:out0"] = _acuity_entry(
            precision, ([float(aq.lo)], [float(aq.hi)]), np.array([scale]), np.array([zero_point]), False
        )
        head = plan.head(nodes)
        if head is None:
            continue
        _, wq, w, w_scale, w_zero = plan.weight(head)
        parameters[f"@{layer}:weight"] = _acuity_entry(
            precision, _extremes(w, wq.axis), w_scale, w_zero, wq.axis is not None
        )
        b_scale = plan.bias_scale(head)
        if b_scale is not None:  # i64 in 16-bit layers, as the demo files store it
            parameters[f"@{layer}:bias"] = _acuity_entry(
                precision,
                None,
                b_scale,
                np.zeros(b_scale.size),
                wq.axis is not None,
                "i64" if wq.quantizer.bits > 8 else "i32",
            )
    custom = {(nodes[0] if nodes else tensor): plan.precision(aq).name for tensor, nodes, aq in plan.mixed()}
    header = (
        f"# Acuity quantization file from onnx-workbench: target {plan.profile.name}, configuration {label}.\n"
        "# Layer names are the ONNX node name of each layer's first node (Acuity names layers itself at\n"
        "# import and no public source shows its rule for ONNX models: compare with the .json of\n"
        "# `pegasus import` and rename where they differ). Hybrid flow: `pegasus quantize --hybrid\n"
        "# --model-quantize THIS_FILE` with the layers below customized_quantize_layers.\n"
    )
    return header + _dump({"quantize_parameters": parameters, "customized_quantize_layers": custom})


def rknn_cfg(analysis: QuantAnalysis, label: str, activations: dict[str, ActivationQuant] | None = None) -> str:
    """The ``.quantization.cfg`` of a configuration (or of an explicit per-tensor precision)."""
    plan = _Plan(analysis, activations if activations is not None else analysis.precision(label), "rknn")
    parameters: dict = {}

    def entry(
        precision: Precision,
        lo: list[float],
        hi: list[float],
        scale: np.ndarray,
        zero_point: np.ndarray,
        per_channel: bool,
    ) -> dict:
        return {
            "qtype": precision.scheme,
            "qmethod": "channel" if per_channel else "layer",
            "dtype": precision.itype,
            "min": lo,
            "max": hi,
            "scale": _floats(scale),
            "zero_point": _ints(zero_point),
        }

    for tensor, nodes, aq in plan.points():
        precision = plan.precision(aq)
        scale, zero_point = aq.params
        parameters[tensor] = entry(
            precision, [float(aq.lo)], [float(aq.hi)], np.array([scale]), np.array([zero_point]), False
        )
        head = plan.head(nodes)
        if head is None:
            continue
        name, wq, w, w_scale, w_zero = plan.weight(head)
        parameters[name] = entry(precision, *_extremes(w, wq.axis), w_scale, w_zero, wq.axis is not None)
    custom = {tensor: plan.precision(aq).itype for tensor, _, aq in plan.mixed()}
    header = (
        f"# RKNN-Toolkit2 quantization config from onnx-workbench: target {plan.profile.name}, configuration "
        f"{label}.\n# Keys are the ONNX tensor names (RKNN keys layers by their output tensor, and an ONNX\n"
        "# model's tensor names survive its import). Hybrid flow: rknn.hybrid_quantization_step2(...,\n"
        "# model_quantization_cfg=THIS_FILE) with the layers below custom_quantize_layers.\n"
    )
    return header + _dump({"custom_quantize_layers": custom, "quantize_parameters": parameters})
