"""Weight analysis: outliers and per-tensor vs per-channel quantization error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.quant.model import WeightTensor
from app.quant.quantizers import Quantizer
from app.runtime.compare import sqnr_db


def channel_params(quantizer: Quantizer, w: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Scales and zero points (arrays; one per channel along ``axis``, or one for None)."""
    if axis is None:
        lo, hi = np.array([w.min()]), np.array([w.max()])
    else:
        rows = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
        lo, hi = rows.min(axis=1), rows.max(axis=1)
    return quantizer.params_of(lo, hi)


def quantize(
    quantizer: Quantizer, w: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int | None
) -> np.ndarray:
    """Integer weights for the given per-tensor or per-channel parameters."""
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = -1
    q = np.rint(w / scale.reshape(shape))
    q += zero_point.reshape(shape).astype(np.float32)  # float32 holds these integers exactly
    np.clip(q, quantizer.qmin, quantizer.qmax, out=q)
    return q.astype(quantizer.numpy_type)


def dequantized(quantizer: Quantizer, w: np.ndarray, axis: int | None) -> np.ndarray:
    """The weight as the toolkit computes with it: quantized per tensor (axis None) or per channel and
    dequantized in float32, as DequantizeLinear does."""
    scale, zero_point = channel_params(quantizer, w, axis)
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = -1
    restored = quantize(quantizer, w, scale, zero_point, axis).astype(np.float32)
    restored -= zero_point.reshape(shape).astype(np.float32)
    restored *= scale.reshape(shape)
    return restored


def _energy(x: np.ndarray) -> float:
    """Sum of squares of a float32 array, accumulated in float64."""
    return float(np.sum(np.square(x), dtype=np.float64))


def weight_sqnr(quantizer: Quantizer, w: np.ndarray, axis: int | None, signal: float | None = None) -> float | None:
    """SQNR (dB) of quantizing the weight per tensor (axis None) or per channel.

    Dequantized in float32, as DequantizeLinear does; ``signal`` (sum of w**2) if already known.
    """
    restored = dequantized(quantizer, w, axis)
    np.subtract(w, restored, out=restored)
    return sqnr_db(_energy(w) if signal is None else signal, _energy(restored))


@dataclass(frozen=True)
class WeightReport:
    """Why a weight hurts: outlier ratio max|w|/std, and what per-channel scales win."""

    weight: WeightTensor
    shape: tuple[int, ...]
    outlier_ratio: float | None
    sqnr_per_tensor: float | None
    sqnr_per_channel: float | None

    def to_json(self) -> dict:
        return {
            "node": self.weight.node,
            "op_type": self.weight.op_type,
            "shape": list(self.shape),
            "channel_axis": self.weight.channel_axis,
            "outlier_ratio": self.outlier_ratio,
            "sqnr_db": {"per_tensor": self.sqnr_per_tensor, "per_channel": self.sqnr_per_channel},
        }


def analyse_weight(weight: WeightTensor, w: np.ndarray, quantizer: Quantizer) -> WeightReport:
    """Outlier ratio and SQNR per tensor vs per channel with ``quantizer``."""
    w = np.asarray(w, dtype=np.float32)
    std = float(np.std(w, dtype=np.float64))
    ratio = float(np.max(np.abs(w))) / std if std > 0 else None
    signal = _energy(w)
    return WeightReport(
        weight,
        tuple(int(d) for d in w.shape),
        ratio,
        weight_sqnr(quantizer, w, None, signal),
        weight_sqnr(quantizer, w, weight.channel_axis, signal),
    )
