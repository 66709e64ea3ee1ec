"""Quantizers (uint8 asymmetric, int8 symmetric, int16 symmetric) and their error.

The error of a range is computed from the histogram with the exact integral of the
rounding and clipping error over each bin (values taken as uniform within a bin), so it
is right both when bins are finer than a quantization step (uint8) and when a bin holds
many steps (int16), without any sample data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from app.quant.histogram import Histogram


@dataclass(frozen=True)
class Quantizer:
    """An affine integer grid: ``q = clip(round(x / scale) + zero_point, qmin, qmax)``."""

    name: str
    qmin: int
    qmax: int
    symmetric: bool
    onnx_type: int
    numpy_type: type

    def params(self, lo: float, hi: float) -> tuple[np.float32, int]:
        """Scale and zero point for a clip range; the range always includes 0 (exact zero)."""
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        if self.symmetric:
            absmax = max(-lo, hi)
            scale = absmax / self.qmax if absmax > 0 else 1.0
            return np.float32(scale), 0
        if hi == lo:
            return np.float32(1.0), int(np.clip(0, self.qmin, self.qmax))
        scale = np.float32((hi - lo) / (self.qmax - self.qmin))
        zero_point = int(np.clip(round(self.qmin - lo / float(scale)), self.qmin, self.qmax))
        return scale, zero_point

    def fake_quantize(self, x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
        """Quantize then dequantize like QuantizeLinear/DequantizeLinear (round half to even)."""
        q = np.clip(np.rint(np.asarray(x, dtype=np.float32) / np.float32(scale)) + zero_point, self.qmin, self.qmax)
        return ((q - zero_point) * np.float32(scale)).astype(np.float32)


UINT8 = Quantizer("uint8", 0, 255, False, TensorProto.UINT8, np.uint8)
INT8 = Quantizer("int8", -127, 127, True, TensorProto.INT8, np.int8)
INT16 = Quantizer("int16", -32767, 32767, True, TensorProto.INT16, np.int16)
QUANTIZERS: dict[str, Quantizer] = {q.name: q for q in (UINT8, INT8, INT16)}


def _rounding_integral(u: np.ndarray) -> np.ndarray:
    """Antiderivative of (u - round(u))**2: whole periods give 1/12 each."""
    k = np.floor(u + 0.5)
    r = u - k
    return k / 12.0 + (r ** 3 + 0.125) / 3.0


def expected_squared_error(edges: np.ndarray, counts: np.ndarray, scale: np.ndarray | float,
                           zero_point: np.ndarray | float, qmin: np.ndarray | int, qmax: np.ndarray | int) -> np.ndarray:
    """Sum of squared quantization errors over a histogram, for one or many grids.

    The grid arguments broadcast against a trailing bin axis, e.g. shape (K, 1)
    evaluates K candidate grids at once (MSE search, all quantizers of a tensor).
    """
    a, b = edges[:-1], edges[1:]
    width = b - a
    scale = np.asarray(scale, dtype=np.float64)
    zero_point = np.asarray(zero_point, dtype=np.float64)
    qmin = np.asarray(qmin, dtype=np.float64)
    qmax = np.asarray(qmax, dtype=np.float64)
    low = (qmin - zero_point) * scale
    high = (qmax - zero_point) * scale
    # Part of each bin below, inside and above the representable interval.
    in_a = np.clip(a, low, high)
    in_b = np.clip(b, low, high)
    inside = scale ** 3 * (_rounding_integral(in_b / scale + zero_point) - _rounding_integral(in_a / scale + zero_point))
    below = (np.clip(b, None, low) - low) ** 3 - (np.clip(a, None, low) - low) ** 3
    above = (np.clip(b, high, None) - high) ** 3 - (np.clip(a, high, None) - high) ** 3
    integral = inside + (above + below) / 3.0
    # A bin squeezed to a point (at the exact min or max) holds values equal to it.
    point = (a - np.clip(np.rint(a / scale + zero_point), qmin, qmax) * scale + zero_point * scale) ** 2
    mean_error = np.where(width > 0, integral / np.where(width > 0, width, 1.0), point)
    return np.sum(counts * mean_error, axis=-1)


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
    edges = np.clip(hist.edges[a:b + 1], hist.min, hist.max)
    return edges, counts[a:b]


def signal_power(edges: np.ndarray, counts: np.ndarray) -> float:
    """Sum of x**2 over a histogram, values uniform within a bin."""
    a, b = edges[:-1], edges[1:]
    width = b - a
    mean_sq = np.where(width > 0, (b ** 3 - a ** 3) / (3.0 * np.where(width > 0, width, 1.0)), a * a)
    return float(np.sum(counts * mean_sq))


def sqnr_db(signal: float, noise: float) -> float | None:
    """10*log10(signal/noise); None where undefined (silent tensor or no error at all)."""
    if signal <= 0 or noise <= 0:
        return None
    return 10.0 * math.log10(signal / noise)


def histogram_sqnr(hist: Histogram, grids: list[tuple[Quantizer, float, float]]) -> list[float | None]:
    """Predicted SQNR (dB) of a tensor for each (quantizer, lo, hi), all evaluated at once."""
    edges, counts = histogram_bins(hist)
    params = [q.params(lo, hi) for q, lo, hi in grids]
    column = (len(grids), 1)
    noise = expected_squared_error(
        edges, counts,
        np.array([float(s) for s, _ in params]).reshape(column),
        np.array([z for _, z in params], dtype=np.float64).reshape(column),
        np.array([q.qmin for q, _, _ in grids], dtype=np.float64).reshape(column),
        np.array([q.qmax for q, _, _ in grids], dtype=np.float64).reshape(column))
    signal = signal_power(edges, counts)
    return [sqnr_db(signal, float(n)) for n in noise]


def sample_sqnr(x: np.ndarray, quantizer: Quantizer, lo: float, hi: float) -> float | None:
    """SQNR (dB) of real fake-quantization of data: the spot check of the histogram estimate."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    scale, zero_point = quantizer.params(lo, hi)
    y = quantizer.fake_quantize(x, scale, zero_point)
    x64 = x.astype(np.float64)
    return sqnr_db(float(np.dot(x64, x64)), float(np.sum((x64 - y) ** 2)))
