"""Range algorithms against onnxruntime's calibrators and a plain loop of TensorRT's algorithm."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnxruntime.quantization.calibrate import CalibrationDataReader, CalibrationMethod, create_calibrator

from app.quant import QuantOptions, analyze
from app.quant.calibration import ArrayData
from app.quant.histogram import Histogram
from app.quant.model import input_specs
from app.quant.quantizers import UINT8, histogram_sqnr, sample_sqnr
from app.quant.ranges import kl_divergences, kl_range, mse_range, percentile_range
from app.quant.runtime import session
from app.quant.stats import augmented_model
from tests.quant.models import conv_net


class _Reader(CalibrationDataReader):
    def __init__(self, x: np.ndarray) -> None:
        self.items = iter([{"x": x[i : i + 1]} for i in range(len(x))])

    def get_next(self) -> dict | None:
        return next(self.items, None)


@pytest.fixture(scope="module", params=[3, 5])
def calibrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A test model (two seeds), its data on disk and our analyses (statistics and ranges only)."""
    folder = tmp_path_factory.mktemp("ranges")
    model = conv_net(seed=request.param, size=64)
    onnx.save(model, folder / "m.onnx")
    x = np.random.default_rng(request.param + 1).standard_normal((8, 3, 64, 64)).astype(np.float32)
    np.savez(folder / "x.npz", x=x)
    data = ArrayData(folder / "x.npz", input_specs(model))
    ours = analyze(model, data, QuantOptions(target="onnxruntime", end_to_end=False))
    # Same histogram settings as ORT's: its 2048-bin grid, onto which our exact histogram is
    # resampled; a finer histogram makes that resampling all but exact.
    ort_style = analyze(
        model,
        data,
        QuantOptions(target="onnxruntime", end_to_end=False, kl_method="onnxruntime", histogram_capacity=1 << 16),
    )
    return folder, x, ours, ort_style


def test_minmax_equals_onnxruntime(calibrated) -> None:
    folder, x, ours, _ = calibrated
    calibrator = create_calibrator(
        folder / "m.onnx",
        [],
        augmented_model_path=str(folder / "aug_minmax.onnx"),
        calibrate_method=CalibrationMethod.MinMax,
    )
    calibrator.collect_data(_Reader(x))
    theirs = calibrator.compute_data()
    common = [name for name in ours.tensors if name in theirs]
    assert len(common) == len(ours.tensors)
    for name in common:
        lo, hi = theirs[name].range_value
        hist = ours.tensors[name].stats.histogram
        assert np.float32(hist.min) == np.float32(lo) and np.float32(hist.max) == np.float32(hi), name


_AGREEMENT: list[tuple[int, int]] = []


def test_kl_onnxruntime_method_agrees_with_entropy_calibrater(calibrated) -> None:
    """Within one of ORT's bins on at least 95% of the tensors of both seeds together."""
    folder, x, _, ort_style = calibrated
    calibrator = create_calibrator(
        folder / "m.onnx",
        [],
        augmented_model_path=str(folder / "aug_entropy.onnx"),
        calibrate_method=CalibrationMethod.Entropy,
        extra_options={"num_bins": 2048, "num_quantized_bins": 128},
    )
    calibrator.collect_data(_Reader(x))
    theirs = calibrator.compute_data()
    agree = 0
    for name, t in ort_style.tensors.items():
        lo, hi = (float(v) for v in theirs[name].range_value)
        hist = t.stats.histogram
        bin_width = 2 * max(abs(hist.min), abs(hist.max)) / 2048
        ours_lo, ours_hi = t.ranges["kl"]
        agree += abs(ours_lo - lo) <= bin_width * 1.001 and abs(ours_hi - hi) <= bin_width * 1.001
    _AGREEMENT.append((agree, len(ort_style.tensors)))
    assert agree >= len(ort_style.tensors) - 1
    if len(_AGREEMENT) == 2:
        assert sum(a for a, _ in _AGREEMENT) >= math.ceil(0.95 * sum(n for _, n in _AGREEMENT))


def _reference_kl(counts: np.ndarray, levels: int) -> list[float]:
    """TensorRT's published loop, written plainly (with 1e-4 counts for an empty last Q bin)."""
    n = len(counts)
    result = []
    for i in range(levels, n + 1):
        p = counts[:i].astype(np.float64).copy()
        p[i - 1] += counts[i:].sum()
        q = np.zeros(i)
        for j in range(levels):
            start, stop = -(-j * i // levels), -(-(j + 1) * i // levels)
            chunk = counts[start:stop]
            nonzero = chunk > 0
            if nonzero.any():
                q[start:stop][nonzero] = chunk.sum() / nonzero.sum()
        if p[i - 1] > 0 and q[i - 1] == 0:
            q[i - 1] = 1e-4
        if q.sum() == 0:
            result.append(math.inf)
            continue
        p_norm, q_norm = p / p.sum(), q / q.sum()
        mask = p_norm > 0
        result.append(float(np.sum(p_norm[mask] * np.log(p_norm[mask] / q_norm[mask]))))
    return result


@pytest.mark.parametrize("kind", ["gauss", "relu", "heavy", "outlier"])
def test_kl_matches_plain_loop_of_published_algorithm(kind: str) -> None:
    rng = np.random.default_rng(7)
    x = {
        "gauss": rng.standard_normal(50000),
        "relu": np.maximum(rng.standard_normal(50000), 0),
        "heavy": rng.standard_t(3, 50000),
        "outlier": np.append(rng.standard_normal(50000), 40.0),
    }[kind]
    hist = Histogram()
    hist.add(x.astype(np.float32))
    bins, levels = 512, 64  # a smaller grid keeps the plain loop quick; the code path is the same
    counts = hist.resample_abs(bins, drop_zeros=True) if kind != "relu" else hist.resample(0, hist.max, bins, True)
    levels = levels if kind != "relu" else 2 * levels
    fast = kl_divergences(counts, levels)
    slow = np.array(_reference_kl(counts, levels))
    assert np.allclose(fast, slow, rtol=1e-9, atol=1e-12)
    best = int(np.argmin(slow)) + levels
    top = max(abs(hist.min), abs(hist.max))
    lo, hi = kl_range(hist, bins, levels if kind != "relu" else levels // 2)
    expected = min((best + 0.5) * top / bins, top)
    assert math.isclose(hi, min(expected, hist.max), rel_tol=1e-12)
    if kind == "relu":
        assert lo == 0.0


def test_percentile_and_mse_behave() -> None:
    rng = np.random.default_rng(9)
    x = np.append(rng.standard_normal(100000), [60.0]).astype(np.float32)
    hist = Histogram()
    hist.add(x)
    lo, hi = percentile_range(hist, 99.9)
    assert abs(lo - np.quantile(x, 0.0005)) < 0.05 and abs(hi - np.quantile(x, 0.9995)) < 0.05
    mse = mse_range(hist, UINT8)
    assert hi < mse[1] < 60.0  # clips the lone outlier, keeps more than the percentile
    (minmax_db, mse_db) = histogram_sqnr(hist, [(UINT8, hist.min, hist.max), (UINT8, *mse)])
    assert mse_db > minmax_db


def test_histogram_sqnr_matches_fake_quantization(calibrated) -> None:
    """Predicted SQNR against real fake-quantization of every value of every tensor."""
    _, x, ours, _ = calibrated
    names = list(ours.tensors)
    sess = session(augmented_model(ours.model, [n for n in names if n != "x"]), "none")
    outputs = [o.name for o in sess.get_outputs()]
    values = {n: [] for n in names}
    for i in range(len(x)):
        got = dict(zip(outputs, sess.run(None, {"x": x[i : i + 1]}), strict=True))
        got["x"] = x[i : i + 1]
        for n in names:
            values[n].append(got[n].reshape(-1))
    for name, t in ours.tensors.items():
        full = np.concatenate(values[name])
        for key in ("uint8/minmax", "uint8/kl", "uint8/mse", "int16/percentile", "int16/minmax"):
            quantizer = ours.toolkit.tier(key.split("/")[0]).activation
            measured = sample_sqnr(full, quantizer, *t.ranges[key.split("/")[1]])
            assert abs(t.sqnr_db[key] - measured) < 0.1, (name, key, t.sqnr_db[key], measured)
        # the report's own spot check on its 4096-value sample sees the rounding noise
        assert abs(t.sampled_sqnr_db["uint8/minmax"] - t.sqnr_db["uint8/minmax"]) < 0.5
