"""The JSON report and the quantization table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from app.quant.analysis import HYBRID, QuantAnalysis
from app.quant.evaluate import worst_sqnr
from app.quant.qdq import ActivationQuant
from app.quant.verdict import verdict

FORMAT = "onnx-workbench/quant-report"
TABLE_FORMAT = "onnx-workbench/quant-table"
VERSION = 1


def _clean(value: object) -> object:
    """JSON has no NaN/Infinity: such values become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def tensor_report(analysis: QuantAnalysis, name: str, histogram: bool = True, bins: int | None = None) -> dict:
    """One tensor's entry of the report; ``bins`` resamples its histogram onto that many equal bins
    over [min, max] (counts become fractional) for a chart that needs no more detail."""
    t = analysis.tensors[name]
    hist = t.stats.histogram
    entry: dict = {
        "node": t.stats.tensor.node,
        "op_type": t.stats.tensor.op_type,
        "layer": list(t.stats.tensor.nodes),
        "min": hist.min,
        "max": hist.max,
        "count": hist.count,
        "ranges": {k: [float(lo), float(hi)] for k, (lo, hi) in t.ranges.items()},
        "sqnr_db": t.sqnr_db,
        "sqnr_db_sampled": t.sampled_sqnr_db,
    }
    if hist.nonfinite:
        entry["nonfinite"] = hist.nonfinite
    if histogram and bins is None:
        entry["histogram"] = hist.to_json()
    elif histogram and hist.min < hist.max:
        entry["histogram"] = {"edges": np.linspace(hist.min, hist.max, bins + 1).tolist(),
                              "counts": hist.resample(hist.min, hist.max, bins).tolist()}
    elif histogram:  # a constant tensor: one bin of no width
        entry["histogram"] = {"edges": [hist.min, hist.max], "counts": [hist.count]}
    return _clean(entry)


def build_report(analysis: QuantAnalysis, histograms: bool = True) -> dict:
    """The report: per-tensor statistics, ranges and errors, weights, end to end, recommendation."""
    tensors = {name: tensor_report(analysis, name, histograms) for name in analysis.tensors}
    options = analysis.options
    profile = analysis.toolkit
    low, high = profile.tier("uint8"), profile.tier("int16")
    result: dict = {
        "format": FORMAT,
        "version": VERSION,
        "samples": analysis.samples,
        "synthetic": analysis.synthetic,
        "data": analysis.data_description,
        "settings": {
            "percentile": options.percentile,
            "kl": {"method": options.kl_method, "bins": options.kl_bins or profile.kl_bins,
                   "levels": options.kl_levels},
            "mse_quantizer": low.activation.name,
            "weights": f"{low.weight.name} {'per_channel' if low.per_channel else 'per_tensor'}",
            "int16": ("activations and the weights of their layers (W16A16)" if high.weight.bits == 16
                      else "activations only; weights stay 8-bit (A16W8)"),
        },
        "toolkit": profile.to_json(),
        "tensors": tensors,
        "weights": {name: w.to_json() for name, w in analysis.weights.items()},
        "end_to_end": {label: {o: e.to_json() for o, e in outputs.items()}
                       for label, outputs in analysis.end_to_end.items()},
        "end_to_end_samples": analysis.end_to_end_samples,
        "verdict": verdict(analysis.end_to_end, analysis.options.thresholds),
    }
    if analysis.accumulated:
        result["error_config"] = analysis.error_config
        result["accumulated"] = {name: e.to_json() for name, e in analysis.accumulated.items()}
        result["local"] = {name: e.to_json() for name, e in analysis.local.items()}
    if analysis.sensitivity:
        result["sensitivity"] = [s.to_json() for s in analysis.sensitivity]
        result["sensitivity_scope"] = {
            "config": analysis.error_config, "measured": len(analysis.sensitivity), "points": len(analysis.tensors),
            "samples": analysis.sensitivity_samples, "pruning": None,
            "definition": "worst model-output SQNR with only this point's activation quantized (the config's "
                          "grid), everything else float"}
    if analysis.error_source:
        source = {kind: {o: e.sqnr_db for o, e in outputs.items()} for kind, outputs in analysis.error_source.items()}
        weights, activations = (worst_sqnr(analysis.error_source[k]) for k in ("weights_only", "activations_only"))
        result["error_source"] = {**source, "dominant": "weights" if weights < activations else "activations",
                                  "samples": analysis.curve_samples}
    if analysis.hybrid is not None:
        hybrid = analysis.hybrid
        result["recommendation"] = {
            "int16": hybrid.int16,
            "k": hybrid.curve[hybrid.knee].k,
            "rule": hybrid.rule,
            "target_sqnr_db": options.target_sqnr_db,
            "base": analysis.hybrid_base,
            "meets_target": hybrid.meets_target,
            "measured_sqnr_db": hybrid.outputs_sqnr_db,
            "curve": [p.to_json() for p in hybrid.curve],
            "knee": hybrid.knee,
            "curve_note": hybrid.note,
            "curve_samples": analysis.curve_samples,
            "ranking": ("sensitivity with the layer's weights (they go to 16 bit with the layer)"
                        if any(s.layer is not None for s in analysis.sensitivity) else "sensitivity"),
            "precision_boundaries": hybrid.boundaries,
            "qdq_runs": hybrid.evaluations,
        }
    return _clean(result)


def quant_table(analysis: QuantAnalysis, label: str = HYBRID,
                activations: dict[str, ActivationQuant] | None = None) -> dict:
    """Every quantized tensor of a configuration (or of an explicit per-tensor precision, which
    ``label`` then names): dtype (the tier: uint8 or int16), the toolkit's precision name, its
    quantizer, scale and zero point (or fl), range, algorithm, and a point's layer (ONNX nodes)."""
    activations = activations if activations is not None else analysis.precision(label)
    weights = analysis.weight_grids(activations)
    profile = analysis.toolkit
    layers = {t.stats.tensor.name: list(t.stats.tensor.nodes) for t in analysis.tensors.values()}
    table = {}
    for name, aq in activations.items():
        tier = profile.tier_of(aq.quantizer, weights=False)
        table[name] = {**aq.to_json(), "dtype": tier, "precision": profile.tier(tier).name, "layer": layers[name]}
    for name, (_, wq) in weights.items():
        tier = profile.tier_of(wq.quantizer, weights=True)
        table[name] = {**wq.to_json(analysis.weight_values[name]), "dtype": tier, "precision": profile.tier(tier).name}
    return _clean({"format": TABLE_FORMAT, "version": VERSION, "configuration": label, "toolkit": profile.name,
                   "tensors": table})


def write_json(document: dict, path: str | Path) -> None:
    """Write strict JSON (no NaN)."""
    Path(path).write_text(json.dumps(document, indent=1, allow_nan=False))
