"""Quantizers (affine grids, and dynamic fixed point: power-of-two scales) and their error.

The error of a range is computed from the histogram with the exact integral of the
rounding and clipping error over each bin (values taken as uniform within a bin), so it
is right both when bins are finer than a quantization step (uint8) and when a bin holds
many steps (int16), without any sample data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from app.quant.histogram import Histogram
from app.runtime.compare import sqnr_db


@dataclass(frozen=True)
class Quantizer:
    """An affine integer grid: ``q = clip(round(x / scale) + zero_point, qmin, qmax)``.

    ``power_of_two``: dynamic fixed point (Acuity's ``dynamic_fixed_point``): symmetric, no zero
    point, scale 2^-fl with fl = (bits - 1) - ceil(log2(max|x|)); the range is rounded up to a
    power of two, so nothing observed is clipped and up to one bit of resolution is lost.
    """

    name: str
    qmin: int
    qmax: int
    symmetric: bool
    onnx_type: int
    numpy_type: type
    power_of_two: bool = False

    @property
    def bits(self) -> int:
        return int(np.iinfo(self.numpy_type).bits)

    def fraction_lengths(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Dynamic fixed point: fl per range (int64; 0 for an all-zero range)."""
        absmax = np.maximum(np.abs(np.asarray(lo, dtype=np.float64)), np.abs(np.asarray(hi, dtype=np.float64)))
        with np.errstate(divide="ignore"):
            exponent = np.ceil(np.log2(np.where(absmax > 0, absmax, 1.0)))
        return np.where(absmax > 0, (self.bits - 1) - exponent, 0).astype(np.int64)

    def fraction_length(self, lo: float, hi: float) -> int:
        """Dynamic fixed point: the fl of one range (scale 2^-fl)."""
        return int(self.fraction_lengths(np.array(lo), np.array(hi)))

    def params(self, lo: float, hi: float) -> tuple[np.float32, int]:
        """Scale and zero point for a clip range; the range always includes 0 (exact zero)."""
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        if self.power_of_two:
            return np.float32(2.0 ** -self.fraction_length(lo, hi)), 0
        if self.symmetric:
            absmax = max(-lo, hi)
            return np.float32(absmax / self.qmax if absmax > 0 else 1.0), 0
        if hi == lo:
            return np.float32(1.0), int(np.clip(0, self.qmin, self.qmax))
        scale = np.float32((hi - lo) / (self.qmax - self.qmin))
        zero_point = int(np.clip(round(self.qmin - lo / float(scale)), self.qmin, self.qmax))
        return scale, zero_point

    def params_of(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``params`` for many ranges at once: float32 scales and int64 zero points."""
        lo = np.minimum(np.asarray(lo, dtype=np.float64), 0.0)
        hi = np.maximum(np.asarray(hi, dtype=np.float64), 0.0)
        if self.power_of_two:
            scale = np.exp2(-self.fraction_lengths(lo, hi).astype(np.float64)).astype(np.float32)
            return scale, np.zeros(scale.shape, dtype=np.int64)
        if self.symmetric:
            absmax = np.maximum(-lo, hi)
            scale = np.where(absmax > 0, absmax / self.qmax, 1.0).astype(np.float32)
            return scale, np.zeros(scale.shape, dtype=np.int64)
        flat = hi == lo
        scale = np.where(flat, 1.0, (hi - lo) / (self.qmax - self.qmin)).astype(np.float32)
        zero_point = np.rint(self.qmin - lo / scale.astype(np.float64))
        zero_point = np.where(flat, 0, zero_point)
        return scale, np.clip(zero_point, self.qmin, self.qmax).astype(np.int64)

    def fake_quantize(self, x: np.ndarray, scale: float | np.floating, zero_point: int) -> np.ndarray:
        """Quantize then dequantize like QuantizeLinear/DequantizeLinear (round half to even)."""
        q = np.clip(np.rint(np.asarray(x, dtype=np.float32) / np.float32(scale)) + zero_point, self.qmin, self.qmax)
        return ((q - zero_point) * np.float32(scale)).astype(np.float32)


UINT8 = Quantizer("uint8", 0, 255, False, TensorProto.UINT8, np.uint8)
INT8 = Quantizer("int8", -127, 127, True, TensorProto.INT8, np.int8)
INT16 = Quantizer("int16", -32767, 32767, True, TensorProto.INT16, np.int16)
#: Asymmetric int8/int16 (RKNN's w8a8 and w16a16i activations): the full integer range and a zero point.
INT8_ASYMMETRIC = Quantizer("int8_asymmetric", -128, 127, False, TensorProto.INT8, np.int8)
INT16_ASYMMETRIC = Quantizer("int16_asymmetric", -32768, 32767, False, TensorProto.INT16, np.int16)
#: Dynamic fixed point (Acuity): the type's full range, scale 2^-fl, no zero point.
DFP8 = Quantizer("dfp8", -128, 127, True, TensorProto.INT8, np.int8, power_of_two=True)
DFP16 = Quantizer("dfp16", -32768, 32767, True, TensorProto.INT16, np.int16, power_of_two=True)


def _error_antiderivative(
    x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """An antiderivative of the squared quantization error (rounding inside, clipping outside).

    Inside [low, high]: ``scale**3 * F(x/scale + zero_point)`` with F the antiderivative of
    ``(u - round(u))**2`` (whole periods give 1/12 each); beyond: ``(x - bound)**3 / 3``.
    Evaluated once per bin edge, so a bin's error integral is one difference.
    """
    u = np.clip(x, low, high) / scale + zero_point
    k = np.floor(u + 0.5)
    r = u - k
    inside = scale**3 * (k / 12.0 + r * r * r / 3.0)
    below = np.minimum(x - low, 0.0)
    above = np.maximum(x - high, 0.0)
    return inside + (below * below * below + above * above * above) / 3.0


def expected_squared_error(
    edges: np.ndarray,
    counts: np.ndarray,
    scale: np.ndarray | float,
    zero_point: np.ndarray | float,
    qmin: np.ndarray | int,
    qmax: np.ndarray | int,
) -> np.ndarray:
    """Sum of squared quantization errors over a histogram, for one or many grids.

    The grid arguments broadcast against a trailing bin axis, e.g. shape (K, 1)
    evaluates K candidate grids at once (MSE search, all quantizers of a tensor).
    Values are taken as uniform within a bin: the error of a bin is the exact integral
    of the error over it divided by its width.
    """
    width = np.diff(edges)
    scale = np.asarray(scale, dtype=np.float64)
    zero_point = np.asarray(zero_point, dtype=np.float64)
    low = (np.asarray(qmin, dtype=np.float64) - zero_point) * scale
    high = (np.asarray(qmax, dtype=np.float64) - zero_point) * scale
    spread = width > 0
    density = np.where(spread, counts / np.where(spread, width, 1.0), 0.0)
    total = np.diff(_error_antiderivative(edges, scale, zero_point, low, high), axis=-1) @ density
    if not spread.all():
        # A bin squeezed to a point (at the exact min or max) holds values equal to it.
        a, c = edges[:-1][~spread], counts[~spread]
        restored = (np.clip(np.rint(a / scale + zero_point), qmin, qmax) - zero_point) * scale
        total = total + ((a - restored) ** 2) @ c
    return total


def histogram_bins(hist: Histogram) -> tuple[np.ndarray, np.ndarray]:
    """Non-empty span of a histogram: edges clipped to [min, max] and counts (float64).

    Exact zeros (common after Relu) are left out: every grid represents 0 exactly, so
    they carry neither signal nor error, whereas spreading them over their bin would
    overstate the error of fine grids such as int16 by up to 3 dB.
    """
    counts = hist.nonzero_counts()
    nz = np.flatnonzero(counts)
    if nz.size == 0:
        return np.array([0.0, 0.0]), np.zeros(1)
    a, b = int(nz[0]), int(nz[-1]) + 1
    edges = np.clip(hist.edges[a : b + 1], hist.min, hist.max)
    return edges, counts[a:b]


def signal_power(edges: np.ndarray, counts: np.ndarray) -> float:
    """Sum of x**2 over a histogram, values uniform within a bin."""
    a, b = edges[:-1], edges[1:]
    width = b - a
    mean_sq = np.where(width > 0, (b**3 - a**3) / (3.0 * np.where(width > 0, width, 1.0)), a * a)
    return float(np.sum(counts * mean_sq))


def histogram_sqnr(hist: Histogram, grids: list[tuple[Quantizer, float, float]]) -> list[float | None]:
    """Predicted SQNR (dB) of a tensor for each (quantizer, lo, hi), all evaluated at once."""
    edges, counts = histogram_bins(hist)
    scale, zero_point, qmin, qmax = (np.zeros((len(grids), 1)) for _ in range(4))
    for k, (q, lo, hi) in enumerate(grids):
        s, z = q.params(lo, hi)
        scale[k], zero_point[k], qmin[k], qmax[k] = float(s), z, q.qmin, q.qmax
    noise = expected_squared_error(edges, counts, scale, zero_point, qmin, qmax)
    signal = signal_power(edges, counts)
    return [sqnr_db(signal, float(n)) for n in noise]


def sample_sqnr(x: np.ndarray, quantizer: Quantizer, lo: float, hi: float) -> float | None:
    """SQNR (dB) of real fake-quantization of data: the spot check of the histogram estimate."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    scale, zero_point = quantizer.params(lo, hi)
    y = quantizer.fake_quantize(x, scale, zero_point)
    x64 = x.astype(np.float64)
    return sqnr_db(float(np.dot(x64, x64)), float(np.sum((x64 - y) ** 2)))


def bias_scale(input_scale: np.ndarray | float | np.floating, weight_scale: np.ndarray | float) -> np.ndarray:
    """Scale of a layer's bias: input scale times weight scale (per channel with per-channel weights).

    For dynamic fixed point this is fl_bias = fl_input + fl_weight, the rule of Acuity's files.
    """
    return np.asarray(input_scale, dtype=np.float64) * np.asarray(weight_scale, dtype=np.float64)
