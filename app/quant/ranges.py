"""Clip-range algorithms: Min-Max, percentile, KL-divergence (entropy) and MSE.

All work on the merged histogram, so every algorithm's answer comes from one data pass.
The KL search is TensorRT's published algorithm, evaluated for all candidate thresholds
at once with prefix sums instead of one Python loop per threshold.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np

from app.quant.histogram import Histogram
from app.quant.quantizers import UINT8, Quantizer, expected_squared_error, histogram_bins

Range = tuple[float, float]
KlMethod = Literal["tensorrt", "onnxruntime"]

#: A tensor counts as symmetric around zero when the smaller side holds at least this
#: share of sum(|x|); otherwise the asymmetric (uint8) KL search is used.
SYMMETRY_SHARE = 0.2
#: Counts given to an empty Q bin that P fills, as in MXNet's and ORT's smoothing.
_Q_FLOOR = 1e-4
#: Stands in for 0 inside a log: 0 * log(1e-300) is exactly 0.
_TINY = 1e-300


def minmax_range(hist: Histogram) -> Range:
    """The raw observed extremes."""
    return hist.min, hist.max


def percentile_range(hist: Histogram, percentile: float = 99.99) -> Range:
    """Central ``percentile`` % of the values: (100 - percentile)/2 % cut from each side."""
    if not 50.0 < percentile <= 100.0:
        raise ValueError("percentile must be in (50, 100]")
    tail = (100.0 - percentile) / 200.0
    return hist.quantile(tail), hist.quantile(1.0 - tail)


def _xlogx(v: np.ndarray) -> np.ndarray:
    """v * log(v) with 0 for v = 0 (v >= 0); no masked ufuncs, which are several times slower."""
    return v * np.log(np.maximum(v, _TINY))


@functools.lru_cache(maxsize=8)
def _group_bounds(n: int, levels: int) -> np.ndarray:
    """ceil(j * i / levels) for i = levels..n (rows), j = 0..levels: the same for every tensor."""
    i = np.arange(levels, n + 1)
    j = np.arange(levels + 1)
    bounds = (j[None, :] * i[:, None] + levels - 1) // levels
    bounds.flags.writeable = False
    return bounds


def kl_divergences(counts: np.ndarray, levels: int) -> np.ndarray:
    """KL(P||Q) of TensorRT's search for every threshold bin count i = levels..len(counts).

    P is counts[:i] with the mass of counts[i:] added to its last bin; Q merges counts[:i]
    into ``levels`` groups (bin k goes to group floor(k*levels/i)) and spreads each
    group's mass evenly over its non-empty bins. Both normalised. Where P has mass and Q
    none (only P's last bin, when it is empty but takes the outliers) Q gets 1e-4 counts
    as MXNet's and ORT's smoothing gives it: an infinite divergence there would forbid
    clipping a lone outlier that lies beyond empty bins.
    """
    c = np.asarray(counts, dtype=np.float64)
    n = len(c)
    cum = np.concatenate(([0.0], np.cumsum(c)))
    nonzero = np.concatenate(([0], np.cumsum(c > 0)))
    cum_xlogx = np.concatenate(([0.0], np.cumsum(_xlogx(c))))
    total = cum[-1]
    i = np.arange(levels, n + 1)
    bounds = _group_bounds(n, levels)
    group_mass = np.diff(cum[bounds], axis=1)
    group_nonzero = np.diff(nonzero[bounds], axis=1)
    # sum of mass * log(mass / nonzero bins) over groups; log of the integer counts from a table
    log_count = np.log(np.maximum(np.arange(n + 1), 1))
    p_log_q = np.sum(_xlogx(group_mass), axis=1) - np.sum(group_mass * log_count[group_nonzero], axis=1)
    last_nonzero = group_nonzero[:, -1]
    density = np.divide(group_mass[:, -1], last_nonzero, out=np.zeros(len(i)), where=last_nonzero > 0)
    outliers = total - cum[i]
    last = c[i - 1]
    floored = (last == 0) & (outliers > 0)
    q_last = np.where(floored, _Q_FLOOR, density)
    p_log_q = p_log_q + outliers * np.log(np.where(outliers > 0, q_last, 1.0))
    p_log_p = cum_xlogx[i - 1] + _xlogx(last + outliers)
    q_total = cum[i] + np.where(floored, _Q_FLOOR, 0.0)
    with np.errstate(divide="ignore"):
        kl = (p_log_p - p_log_q) / total + np.log(q_total / total)
    kl[cum[i] <= 0] = np.inf
    return kl


def _kl_threshold(counts: np.ndarray, levels: int, top: float) -> float:
    """Threshold (from the grid's anchor) of the least divergent candidate: (i + 0.5) * width."""
    width = top / len(counts)
    kl = kl_divergences(counts, levels)
    if not np.isfinite(kl).any():
        return top
    best = int(np.argmin(kl)) + levels
    return min((best + 0.5) * width, top)


def kl_range(hist: Histogram, bins: int = 2048, levels: int = 128) -> Range:
    """TensorRT-style entropy range.

    Exact zeros are left out (any grid holds them exactly; Relu's spike at 0 would else
    dominate the first level, as NVIDIA's pytorch-quantization also notes).
    Symmetric tensors: |x| histogram of ``bins`` bins, ``levels`` levels (int8) -> [-T, T].
    Others (e.g. after Relu): the asymmetric uint8 equivalent -- the window is anchored at
    the smaller side's extreme (0 for one-signed tensors), only the larger side is searched,
    with 2 * levels levels over the window as a uint8 grid spends them.
    """
    lo, hi = hist.min, hist.max
    if not lo < hi:
        return lo, hi
    edges, counts = histogram_bins(hist)
    centres = 0.5 * (edges[:-1] + edges[1:])
    negative = float(np.sum(counts * np.maximum(-centres, 0.0)))
    positive = float(np.sum(counts * np.maximum(centres, 0.0)))
    if lo < 0 < hi and min(negative, positive) >= SYMMETRY_SHARE * (negative + positive):
        top = max(-lo, hi)
        t = _kl_threshold(hist.resample_abs(bins, drop_zeros=True), levels, top)
        return max(-t, lo), min(t, hi)
    if positive >= negative:
        anchor = min(lo, 0.0)
        t = _kl_threshold(hist.resample(anchor, hi, bins, drop_zeros=True), 2 * levels, hi - anchor)
        return lo, anchor + t
    anchor = max(hi, 0.0)
    t = _kl_threshold(hist.resample(lo, anchor, bins, drop_zeros=True)[::-1], 2 * levels, anchor - lo)
    return anchor - t, hi


def kl_range_onnxruntime(hist: Histogram, bins: int = 2048, quantized_bins: int = 128) -> Range:
    """The entropy range onnxruntime.quantization's EntropyCalibrater would choose.

    Why: users compare with ORT's own quantizer. Same search as ORT's, vectorised: signed
    histogram over [-|x|max, |x|max], centred slices [zero-i, zero+i+1), outliers folded
    into both edge bins, floor(len/quantized_bins) bins per group with the remainder in the
    last group but left out of the expanded Q, Q truncated to integers, zeros smoothed
    with 1e-4, KL in float32.
    """
    lo, hi = hist.min, hist.max
    top = max(abs(lo), abs(hi))
    if top == 0:
        return lo, hi
    c = np.rint(hist.resample(-top, top, bins))  # ORT's counts are integers and it truncates Q
    edges = np.linspace(-top, top, bins + 1)
    zero, half = bins // 2, quantized_bins // 2
    i = np.arange(half, zero + 1)
    start = zero - i
    end = np.minimum(zero + i + 1, bins)
    length = end - start
    cum = np.concatenate(([0.0], np.cumsum(c)))
    k = np.arange(bins)
    inside = k[None, :] < length[:, None]
    sliced = np.where(inside, c[np.minimum(start[:, None] + k[None, :], bins - 1)], 0.0)
    p = sliced.copy()
    rows = np.arange(len(i))
    p[rows, 0] += cum[start]
    p[rows, length - 1] += cum[-1] - cum[end]
    merged = length // quantized_bins
    covered = k[None, :] < (quantized_bins * merged)[:, None]
    group = np.minimum(k[None, :] // merged[:, None], quantized_bins - 1)
    cum_rows = np.concatenate((np.zeros((len(i), 1)), np.cumsum(sliced, axis=1)), axis=1)
    nz_rows = np.concatenate((np.zeros((len(i), 1)), np.cumsum((p != 0) & inside, axis=1)), axis=1)
    gb = np.arange(quantized_bins + 1)[None, :] * merged[:, None]
    group_mass = cum_rows[rows[:, None], gb[:, 1:]] - cum_rows[rows[:, None], gb[:, :-1]]
    group_mass[:, -1] += cum_rows[rows, length] - cum_rows[rows, quantized_bins * merged]
    norm = nz_rows[rows[:, None], gb[:, 1:]] - nz_rows[rows[:, None], gb[:, :-1]]
    per_bin = np.trunc(np.divide(group_mass, norm, out=np.zeros_like(group_mass), where=norm > 0))
    q = np.where(covered, np.take_along_axis(per_bin, group, axis=1), 0.0)

    def smooth(d: np.ndarray) -> np.ndarray:
        zeros = ((d == 0) & inside).sum(axis=1, keepdims=True).astype(np.float32)
        nonzeros = length[:, None].astype(np.float32) - zeros
        eps1 = np.float32(1e-4) * zeros / np.maximum(nonzeros, 1)
        out = d.astype(np.float32) + np.where(d == 0, np.float32(1e-4), -eps1)
        return np.where(inside, out, np.float32(0))

    ps, qs = smooth(p), smooth(q)
    ps = ps / ps.sum(axis=1, keepdims=True)
    qs = qs / qs.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(inside, ps * np.log(ps / qs), np.float32(0))
        terms[inside & ~((ps > 0) & (qs > 0))] = np.inf
    kl = terms.sum(axis=1, dtype=np.float32)
    best = int(np.argmin(kl))
    return max(float(edges[start[best]]), lo), min(float(edges[end[best]]), hi)


def mse_range(hist: Histogram, quantizer: Quantizer = UINT8, max_bins: int = 1024) -> Range:
    """Range that minimises the expected squared error of ``quantizer`` (rounding + clipping).

    Candidates shrink [min, max] towards zero by a factor alpha: a coarse geometric sweep
    down to 1/1024, then a fine sweep around the best, each evaluating all candidates at
    once on the histogram coarsened (exactly) to at most ``max_bins`` bins.
    """
    lo, hi = hist.min, hist.max
    if not lo < hi:
        return lo, hi
    edges, counts = histogram_bins(hist.coarsened(max_bins))

    def best_of(alphas: np.ndarray) -> float:
        scale, zero_point = quantizer.params_of(lo * alphas, hi * alphas)
        errors = expected_squared_error(
            edges, counts, scale[:, None], zero_point[:, None], quantizer.qmin, quantizer.qmax
        )
        return float(alphas[int(np.argmin(errors))])

    coarse = best_of(2.0 ** (-np.arange(41) / 4.0))
    fine = best_of(coarse * 2.0 ** (np.arange(-4, 5) / 16.0))
    fine = min(fine, 1.0)
    return lo * fine, hi * fine


ALGORITHMS = ("minmax", "kl", "percentile", "mse")


def all_ranges(
    hist: Histogram,
    percentile: float = 99.99,
    kl_bins: int = 2048,
    kl_levels: int = 128,
    kl_method: KlMethod = "tensorrt",
    mse_quantizer: Quantizer = UINT8,
) -> dict[str, Range]:
    """Every algorithm's clip range for one tensor."""
    kl = (
        kl_range(hist, kl_bins, kl_levels)
        if kl_method == "tensorrt"
        else kl_range_onnxruntime(hist, kl_bins, kl_levels)
    )
    return {
        "minmax": minmax_range(hist),
        "kl": kl,
        "percentile": percentile_range(hist, percentile),
        "mse": mse_range(hist, mse_quantizer),
    }
