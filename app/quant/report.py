"""The JSON report and the quantization table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from app.quant.analysis import HYBRID, QuantAnalysis
from app.quant.evaluate import worst_sqnr
from app.quant.histogram import Histogram
from app.quant.hybrid import HybridResult
from app.quant.qdq import ActivationQuant
from app.quant.verdict import verdict

FORMAT = "onnx-workbench/quant-report"
TABLE_FORMAT = "onnx-workbench/quant-table"
VERSION = 1


def _clean(value: Any) -> Any:
    """JSON has no NaN/Infinity: such values become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


#: Bins a histogram keeps in the report, at most (128-256 after merging pairs): near the 320-pixel plot of
#: the page's chart, which merges a histogram down to its pixels anyway, so the chart drawn from the
#: report's shows the same shape and clip lines as from the full one; about 2 kB of JSON a tensor instead
#: of 60-150 kB (PicoDet's 524 points: 1.6 MB, not 83 MB). The histogram route serves full resolution.
REPORT_HISTOGRAM_BINS = 256


def _histogram_json(hist: Histogram, bins: int | None, max_bins: int | None) -> dict:
    """Edges and counts: resampled onto ``bins`` equal bins over [min, max] (fractional counts), or
    thinned to at most ``max_bins`` by merging neighbouring bins (exact counts; ``thinned_from`` says
    how many bins the full histogram has), or at full resolution."""
    if bins is not None:
        if hist.min < hist.max:
            return {
                "edges": np.linspace(hist.min, hist.max, bins + 1).tolist(),
                "counts": hist.resample(hist.min, hist.max, bins).tolist(),
            }
        return {"edges": [hist.min, hist.max], "counts": [hist.count]}  # a constant tensor: one bin of no width
    nonzero = np.flatnonzero(hist.counts)
    full_bins = int(nonzero[-1] - nonzero[0]) + 1 if nonzero.size else 0
    if max_bins is None or full_bins <= max_bins:
        return hist.to_json()
    return {**hist.coarsened(max_bins).to_json(), "thinned_from": full_bins}


def tensor_report(
    analysis: QuantAnalysis, name: str, histogram: bool = True, bins: int | None = None, max_bins: int | None = None
) -> dict:
    """One tensor's entry of the report; ``bins`` resamples its histogram onto that many equal bins
    over [min, max] for a chart that needs no more detail, ``max_bins`` thins it (the report's)."""
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
    if histogram:
        entry["histogram"] = _histogram_json(hist, bins, max_bins)
    return _clean(entry)


def build_report(
    analysis: QuantAnalysis, histograms: bool = True, histogram_bins: int | None = REPORT_HISTOGRAM_BINS
) -> dict:
    """The report: per-tensor statistics, ranges and errors, weights, end to end, recommendation.
    Histograms are thinned to ``histogram_bins`` (None: full resolution)."""
    tensors = {name: tensor_report(analysis, name, histograms, max_bins=histogram_bins) for name in analysis.tensors}
    result: dict = {
        "format": FORMAT,
        "version": VERSION,
        "samples": analysis.samples,
        "synthetic": analysis.synthetic,
        "data": analysis.data_description,
        "settings": _settings(analysis),
        "toolkit": analysis.toolkit.to_json(),
        "tensors": tensors,
        "weights": {name: w.to_json() for name, w in analysis.weights.items()},
        "end_to_end": {
            label: {o: e.to_json() for o, e in outputs.items()} for label, outputs in analysis.end_to_end.items()
        },
        "end_to_end_samples": analysis.end_to_end_samples,
        "verdict": verdict(analysis.end_to_end, analysis.options.thresholds),
    }
    result.update(_error_map(analysis))
    if analysis.hybrid is not None:
        result["recommendation"] = _recommendation(analysis, analysis.hybrid)
    return _clean(result)


def _settings(analysis: QuantAnalysis) -> dict:
    """The settings the statistics and ranges were computed with, as the report states them."""
    options = analysis.options
    profile = analysis.toolkit
    low, high = profile.tier("uint8"), profile.tier("int16")
    return {
        "percentile": options.percentile,
        "kl": {"method": options.kl_method, "bins": options.kl_bins or profile.kl_bins, "levels": options.kl_levels},
        "mse_quantizer": low.activation.name,
        "weights": f"{low.weight.name} {'per_channel' if low.per_channel else 'per_tensor'}",
        "int16": (
            "activations and the weights of their layers (W16A16)"
            if high.weight.bits == 16
            else "activations only; weights stay 8-bit (A16W8)"
        ),
    }


def _error_map(analysis: QuantAnalysis) -> dict:
    """Where the error comes from, for what was measured: accumulated and local error per point, the
    sensitivity ranking, and weights-only vs activations-only runs."""
    result: dict = {}
    if analysis.accumulated:
        result["error_config"] = analysis.error_config
        result["accumulated"] = {name: e.to_json() for name, e in analysis.accumulated.items()}
        result["local"] = {name: e.to_json() for name, e in analysis.local.items()}
    if analysis.sensitivity:
        result["sensitivity"] = [s.to_json() for s in analysis.sensitivity]
        result["sensitivity_scope"] = {
            "config": analysis.error_config,
            "measured": len(analysis.sensitivity),
            "points": len(analysis.tensors),
            "samples": analysis.sensitivity_samples,
            "pruning": None,
            "definition": "worst model-output SQNR with only this point's activation quantized (the config's "
            "grid), everything else float",
        }
    if analysis.error_source:
        source = {kind: {o: e.sqnr_db for o, e in outputs.items()} for kind, outputs in analysis.error_source.items()}
        weights = worst_sqnr(analysis.error_source["weights_only"]) if "weights_only" in source else math.inf
        activations = worst_sqnr(analysis.error_source["activations_only"])
        result["error_source"] = {
            "weights_only": {},
            **source,
            "dominant": "weights" if weights < activations else "activations",
            "config": analysis.error_config,
            "samples": analysis.sensitivity_samples,
        }
    return result


def _recommendation(analysis: QuantAnalysis, hybrid: HybridResult) -> dict:
    """The hybrid: which tensors go to int16, the precision curve it is the knee of, and how it was ranked."""
    return {
        "int16": hybrid.int16,
        "k": hybrid.curve[hybrid.knee].k,
        "rule": hybrid.rule,
        "target_sqnr_db": analysis.options.target_sqnr_db,
        "base": analysis.hybrid_base,
        "meets_target": hybrid.meets_target,
        "measured_sqnr_db": hybrid.outputs_sqnr_db,
        "curve": [p.to_json() for p in hybrid.curve],
        "knee": hybrid.knee,
        "curve_note": hybrid.note,
        "curve_samples": analysis.curve_samples,
        "ranking": (
            "sensitivity with the layer's weights (they go to 16 bit with the layer; estimated)"
            if any(s.with_weights_db is not None for s in analysis.sensitivity)
            else "sensitivity"
        ),
        "precision_boundaries": hybrid.boundaries,
        "qdq_runs": hybrid.evaluations,
    }


def quant_table(
    analysis: QuantAnalysis, label: str = HYBRID, activations: dict[str, ActivationQuant] | None = None
) -> dict:
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
    return _clean(
        {"format": TABLE_FORMAT, "version": VERSION, "configuration": label, "toolkit": profile.name, "tensors": table}
    )


def write_json(document: dict, path: str | Path) -> None:
    """Write strict JSON (no NaN), compact: an indent puts each number of the histograms on its own line
    (1.8x the size) and makes json use its pure-Python encoder (3.5x the time)."""
    Path(path).write_text(json.dumps(document, separators=(",", ":"), allow_nan=False))
