"""PP-OCRv4 det at 1x3x640x640 on photos (issue 14, "Must show"): the sensitivity ranking against a
brute-force scan written here (one point quantized at a time, plain onnxruntime sessions), the hybrid's
reported output SQNR against its exported QDQ model run on its own, and the staged runs of the gated
model against one run of the whole gated model."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import skimage.data

from app.quant import ImagePreprocess, QuantOptions, analyze, build_report
from app.quant.calibration import ImageData
from app.quant.model import infer_types, input_specs
from app.quant.qdq import build_qdq_model
from app.quant.sensitivity import GATE, StagedModel
from bench.quant import IMAGENET, PHOTOS, ppocr_det

#: Photos analysed: the sensitivity ranking uses the first (``sensitivity_samples`` 1), the curve all four.
SAMPLES = 4


def _session(payload: bytes | str, level: ort.GraphOptimizationLevel | None = None) -> ort.InferenceSession:
    """A plain onnxruntime session, default options unless a level is given."""
    options = ort.SessionOptions()
    if level is not None:
        options.graph_optimization_level = level
    return ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])


def _sqnr_db(reference: list[np.ndarray], got: list[np.ndarray]) -> float:
    """SQNR over all samples pooled (as the report sums signal and noise over its samples)."""
    signal = sum(float(np.sum(r.astype(np.float64) ** 2)) for r in reference)
    noise = sum(float(np.sum((r.astype(np.float64) - g) ** 2)) for r, g in zip(reference, got, strict=True))
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


@pytest.fixture(scope="module")
def photos() -> tuple:
    model = ppocr_det()
    if model is None:
        pytest.skip("the ppocrv4_det fixture cannot be fetched")
    folder = Path(skimage.data.__file__).parent
    data = ImageData([folder / name for name in PHOTOS[:SAMPLES]], input_specs(model), ImagePreprocess(**IMAGENET))
    return model, data


@pytest.fixture(scope="module")
def analysis(photos):
    model, data = photos
    start = time.perf_counter()
    result = analyze(model, data, QuantOptions())
    print(f"\ndefault analysis, {data.num_samples} photos: {time.perf_counter() - start:.1f} s")
    return result


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sensitivity_top10_matches_a_brute_force_scan(photos, analysis) -> None:
    _, data = photos
    report = build_report(analysis, histograms=False)
    grid = analysis.precision(report["error_config"])
    source = analysis.qdq_source
    batch = next(data.batches())  # sensitivity_samples = 1: the ranking's sample
    assert report["sensitivity_scope"]["samples"] == 1 and len(report["sensitivity"]) == len(grid)
    reference = _session(source.SerializeToString())
    outputs = [o.name for o in reference.get_outputs() if o.type == "tensor(float)"]
    expected = reference.run(outputs, batch)
    start = time.perf_counter()
    brute = {}
    for point, aq in grid.items():
        alone = _session(build_qdq_model(source, {point: aq}, {}, {}).SerializeToString())
        got = alone.run(outputs, batch)
        brute[point] = min(_sqnr_db([e], [g]) for e, g in zip(expected, got, strict=True))
    scan = time.perf_counter() - start
    brute_top = sorted(brute, key=brute.get)[:10]
    ranked_top = [entry["tensor"] for entry in report["sensitivity"][:10]]
    reported = {entry["tensor"]: entry["output_sqnr_db"] for entry in report["sensitivity"]}
    overlap = set(brute_top) & set(ranked_top)
    print(f"\nbrute-force scan of {len(grid)} points: {scan:.1f} s")
    print("sensitivity top 10:", [(t, round(reported[t], 2)) for t in ranked_top])
    print("brute-force top 10:", [(t, round(brute[t], 2)) for t in brute_top])
    print(f"overlap {len(overlap)} of 10")
    assert len(overlap) >= 6


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_hybrid_sqnr_equals_a_plain_run_of_its_exported_model(photos, analysis, tmp_path) -> None:
    model, data = photos
    report = build_report(analysis, histograms=False)
    (output,) = report["end_to_end"]["hybrid"]
    reported = report["end_to_end"]["hybrid"][output]["sqnr_db"]
    analysis.export_qdq(tmp_path / "hybrid.onnx")
    reference = _session(model.SerializeToString())
    batches = list(data.batches())
    expected = [reference.run([output], b)[0] for b in batches]
    measured = {}
    for label, level in [("default options", None), ("optimizations off", ort.GraphOptimizationLevel.ORT_DISABLE_ALL)]:
        exported = _session(str(tmp_path / "hybrid.onnx"), level)
        measured[label] = _sqnr_db(expected, [exported.run([output], b)[0] for b in batches])
    print(
        f"\nhybrid (k={report['recommendation']['k']}, {len(report['recommendation']['int16'])} int16 points) on "
        f"{len(batches)} photos: reported {reported:.3f} dB; exported model in onnxruntime: "
        + ", ".join(f"{label} {value:.3f} dB" for label, value in measured.items())
    )
    assert report["end_to_end_samples"] == len(batches)
    assert abs(measured["default options"] - reported) <= 0.5


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_staged_runs_equal_one_run_of_the_whole_gated_model(photos, analysis) -> None:
    """StagedModel runs a point's flags from its own stage on (the float model before it): the outputs must
    be those of the whole gated model with the same flags, including a point with its layer's weights.

    Float tolerance: the float stages are optimized ("all": fused, reassociated sums), the whole gated
    model is not (its Ifs block fusion), so their floats differ by ~1e-6; a value that lands that close to
    a rounding boundary of a quantized point may round one step the other way, which moves a few output
    values by up to ~1e-4 (PP-OCR's output is a probability map in [0, 1]).
    """
    _, data = photos
    grid = analysis.precision(analysis.error_config)
    weights = analysis.weight_grids(grid)
    source = analysis.qdq_source
    gated = build_qdq_model(source, grid, weights, analysis.weight_values, gate=GATE)
    staged = StagedModel(gated, source, list(grid), infer_types(source), analysis.folder)
    whole = _session(gated.SerializeToString(), ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
    index = {name: k for k, name in enumerate([*grid, *weights])}
    points = list(grid)
    layered = next(
        p
        for p in points[len(points) // 3 :]
        if any(p in readers for readers in (analysis.weight_layers or {}).values())
    )
    layer_weights = [index[w] for w, readers in analysis.weight_layers.items() if layered in readers]
    runs = {
        "no flag": [],
        "first point": [0],
        "middle point": [len(points) // 2],
        "last point": [len(points) - 1],
        "a point and its layer's weights": [index[layered], *layer_weights],
        "three points at once": [1, len(points) // 2, len(points) - 2],
    }
    batch = next(data.batches())
    floats = staged.float_values(batch)
    for label, flags in runs.items():
        gate = np.zeros(len(index), dtype=bool)
        gate[flags] = True
        expected = dict(zip(staged.outputs, whole.run(staged.outputs, {**batch, GATE: gate}), strict=True))
        got = staged.run_with(floats, flags) if flags else floats
        for name in staged.outputs:
            difference = np.abs(got[name] - expected[name])
            sqnr = {
                "staged": _sqnr_db([floats[name]], [got[name]]),
                "whole": _sqnr_db([floats[name]], [expected[name]]),
            }
            print(
                f"{label} {flags}: max |staged - whole| {difference.max():.2e} ({int((difference > 1e-5).sum())} "
                f"values over 1e-5 of {difference.size}); max |whole - float| "
                f"{np.abs(expected[name] - floats[name]).max():.2e}; SQNR staged {sqnr['staged']:.3f} dB, "
                f"whole {sqnr['whole']:.3f} dB"
            )
            assert difference.max() < 1e-3 and (difference > 1e-5).mean() < 1e-3, label
            if flags:
                assert sqnr["whole"] < 80, label  # the flags did quantize something
                assert abs(sqnr["staged"] - sqnr["whole"]) < 0.05, label
