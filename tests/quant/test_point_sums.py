"""The error map's one-pass kernel (localize._point_sums) against what it replaces: fake_quantize and three
OutputError.add calls. The values sit on and next to the quantizers' rounding ties, where a quotient taken
in float64 instead of QuantizeLinear's float32 rounds the other way, and beyond the clip range."""

from __future__ import annotations

import numpy as np
import pytest

from app.quant.evaluate import OutputError
from app.quant.localize import _point_sums
from app.quant.quantizers import DFP8, INT16, UINT8, Quantizer


def _near_ties(scale: np.float32, zero_point: int, quantizer: Quantizer, rng: np.random.Generator) -> np.ndarray:
    """Values whose float32 quotient by the scale is a tie, a few ulps either side of one, or out of range."""
    steps = rng.integers(quantizer.qmin - zero_point - 4, quantizer.qmax - zero_point + 4, 4000).astype(np.float32)
    ties = (steps + np.float32(0.5)) * scale
    nudged = [np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))]
    wide = rng.standard_normal(4000).astype(np.float32) * scale * (quantizer.qmax - quantizer.qmin)
    return np.concatenate([ties, *nudged, wide]).astype(np.float32)


def _expected(value: np.ndarray, local: np.ndarray, quantized: np.ndarray, quantizer: Quantizer, params) -> list:
    errors = [OutputError() for _ in range(3)]
    errors[0].add(value, quantizer.fake_quantize(local, *params))
    errors[1].add(value, quantizer.fake_quantize(value, *params))
    errors[2].add(value, quantized)
    return [v for e in errors for v in (e.signal, e.noise, e.dot, e.candidate)]


@pytest.mark.parametrize("quantizer", [UINT8, INT16, DFP8], ids=lambda q: q.name)
def test_point_sums_equal_fake_quantize_and_output_error(quantizer: Quantizer) -> None:
    rng = np.random.default_rng(3)
    params = quantizer.params(-0.7, 2.3)
    scale, zero_point = params
    value = _near_ties(scale, zero_point, quantizer, rng)
    local = value[rng.permutation(value.size)]
    quantized = (value + rng.standard_normal(value.size).astype(np.float32) * scale).astype(np.float32)
    sums = np.zeros(12)
    _point_sums(
        value,
        local,
        quantized,
        np.float32(scale),
        float(zero_point),
        float(quantizer.qmin),
        float(quantizer.qmax),
        sums,
    )
    np.testing.assert_allclose(sums, _expected(value, local, quantized, quantizer, params), rtol=1e-9)
