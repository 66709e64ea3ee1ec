"""Streaming histogram that merges exactly across batches.

Bins have a power-of-two width and are aligned to multiples of it (bin ``k`` covers
``[k*w, (k+1)*w)``). So ``x / w`` is exact in float32, and when a batch widens the
range the width doubles by adding bin pairs: no count is ever split or guessed, so the
result does not depend on how the samples were batched.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np

#: Default number of bins the histogram may span; at least half of them cover [min, max]
#: after any doubling, so |x| gets >= capacity/4 bins: enough to resample onto the
#: 2048-bin grid of the KL search with sub-bin error.
DEFAULT_CAPACITY = 8192
#: The finest width relative to |x|max: finer bins than float32 can resolve are useless
#: and this keeps every bin index below 2**23, exact in float32.
_MIN_RELATIVE_EXPONENT = -22
#: 2**-126 is the smallest normal float32; its inverse 2**126 is still finite.
_MIN_EXPONENT = -126


def kernel(function: Callable | None = None, *, fastmath: bool | set[str] = False) -> Callable:
    """``function`` compiled by numba to run without the GIL, cached on disk where a cache folder is
    writable (the package's __pycache__, the user's cache or NUMBA_CACHE_DIR); a read-only install
    with no writable home compiles it once per process instead of failing to import. ``fastmath``:
    numba's flags (``@kernel(fastmath={"reassoc"})`` lets sums be reordered and vectorised)."""
    if function is None:
        return lambda f: kernel(f, fastmath=fastmath)
    try:
        return numba.njit(nogil=True, boundscheck=False, cache=True, fastmath=fastmath)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, boundscheck=False, fastmath=fastmath)(function)


#: Values binned per step: their bin indices stay in L1 between the two loops of ``_bin``.
_CHUNK = 4096


@kernel
def _chunk_indices(values: np.ndarray, inverse_width: float, start: int, index: np.ndarray) -> int:
    """``index[i] = floor(values[i] * inverse_width) - start``; returns how many values were 0.

    ``values[i] * inverse_width`` is exact in float64 (a float32 times a power of two) and the floor
    is taken before the start is subtracted, so no rounding can move a value across a bin edge.
    A loop without stores to shared counts, so the compiler vectorises it.
    """
    zeros = 0
    for i in range(values.size):
        scaled = np.float64(values[i]) * inverse_width
        index[i] = np.int32(np.floor(scaled)) - start
        zeros += scaled == 0.0
    return zeros


@kernel
def _bin(values: np.ndarray, inverse_width: float, start: int, counts: np.ndarray) -> int:
    """Add each value to ``counts[floor(value * inverse_width) - start]``; return how many were 0.

    Why not numpy: its multiply, floor, cast and bincount take five passes, bincount holding the
    GIL, 2.2 ns a value on PP-OCRv4's activations; this takes 0.9 ns and releases the GIL, so both
    statistics workers bin at once. Large tensors are counted into four interleaved copies of the
    counts: runs of equal values (the zeros after a Relu) would otherwise wait on their own increment.
    """
    ways = 4 if values.size >= 16 * counts.size else 1
    partial = np.zeros((ways, counts.size), np.int64)
    index = np.empty(_CHUNK, np.int32)
    zeros = 0
    for begin in range(0, values.size, _CHUNK):
        n = min(_CHUNK, values.size - begin)
        zeros += _chunk_indices(values[begin : begin + n], inverse_width, start, index)
        if ways == 4:
            quad = n - n % 4
            for i in range(0, quad, 4):
                partial[0, index[i]] += 1
                partial[1, index[i + 1]] += 1
                partial[2, index[i + 2]] += 1
                partial[3, index[i + 3]] += 1
            for i in range(quad, n):
                partial[0, index[i]] += 1
        else:
            for i in range(n):
                partial[0, index[i]] += 1
    for way in range(ways):
        counts += partial[way]
    return zeros


class Histogram:
    """Signed histogram of one tensor with exact min, max and count."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 16 or capacity % 2:
            raise ValueError("capacity must be an even number >= 16")
        self.capacity = capacity
        self.exponent: int | None = None
        self.start = 0
        self.counts = np.zeros(0, dtype=np.int64)
        self.min = math.inf
        self.max = -math.inf
        self.count = 0
        self.nonfinite = 0
        self.zeros = 0

    @property
    def width(self) -> float:
        """Bin width (a power of two)."""
        return math.ldexp(1.0, self.exponent if self.exponent is not None else 0)

    @property
    def edges(self) -> np.ndarray:
        """Bin edges, float64, ``len(counts) + 1`` of them."""
        return (self.start + np.arange(len(self.counts) + 1, dtype=np.float64)) * self.width

    def _exponent_for(self, lo: float, hi: float) -> int:
        """Smallest exponent whose aligned bins span [lo, hi] within capacity."""
        absmax = max(abs(lo), abs(hi))
        if absmax == 0.0:
            return _MIN_EXPONENT
        e = math.frexp(absmax)[1] + _MIN_RELATIVE_EXPONENT
        if hi > lo:
            e = max(e, math.ceil(math.log2((hi - lo) / self.capacity)))
        e = max(e, _MIN_EXPONENT)
        while math.floor(hi / math.ldexp(1.0, e)) - math.floor(lo / math.ldexp(1.0, e)) + 1 > self.capacity:
            e += 1
        return e

    def _coarsen(self, exponent: int) -> None:
        """Double the width until it reaches 2**exponent, adding neighbouring bin pairs."""
        assert self.exponent is not None
        counts, start = self.counts, self.start
        for _ in range(exponent - self.exponent):
            if start % 2:
                counts = np.concatenate(([0], counts))
                start -= 1
            if len(counts) % 2:
                counts = np.concatenate((counts, [0]))
            counts = counts.reshape(-1, 2).sum(axis=1)
            start //= 2
        self.counts, self.start, self.exponent = counts, start, exponent

    def _cover(self, lo: float, hi: float, exponent: int | None = None) -> None:
        """Grow width (at least to 2**exponent) and bin range so that [lo, hi] fits."""
        new_lo, new_hi = min(self.min, lo), max(self.max, hi)
        needed = max(self._exponent_for(new_lo, new_hi), exponent if exponent is not None else _MIN_EXPONENT)
        if self.exponent is None:
            self.exponent = needed
            self.start = math.floor(new_lo / self.width)
            self.counts = np.zeros(math.floor(new_hi / self.width) - self.start + 1, dtype=np.int64)
        elif needed > self.exponent:
            self._coarsen(needed)
        first = min(math.floor(new_lo / self.width), self.start)
        last = max(math.floor(new_hi / self.width), self.start + len(self.counts) - 1)
        if first < self.start or last >= self.start + len(self.counts):
            grown = np.zeros(last - first + 1, dtype=np.int64)
            grown[self.start - first : self.start - first + len(self.counts)] = self.counts
            self.counts, self.start = grown, first
        self.min, self.max = new_lo, new_hi

    def add(self, values: np.ndarray) -> None:
        """Count a batch of values (any shape; float32 is binned without a copy)."""
        x = np.asarray(values).reshape(-1)
        if x.dtype != np.float32:
            x = x.astype(np.float32)
        if x.size == 0:
            return
        lo, hi = float(x.min()), float(x.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            finite = np.isfinite(x)
            self.nonfinite += int(x.size - np.count_nonzero(finite))
            x = x[finite]
            if x.size == 0:
                return
            lo, hi = float(x.min()), float(x.max())
        self._cover(lo, hi)
        assert self.exponent is not None
        self.zeros += _bin(x, math.ldexp(1.0, -self.exponent), self.start, self.counts)
        self.count += x.size

    def merge(self, other: Histogram) -> None:
        """Add another histogram's counts exactly (both are brought to the coarser width)."""
        if other.exponent is None:
            return
        self._cover(other.min, other.max, other.exponent)
        assert self.exponent is not None
        theirs = Histogram(self.capacity)
        theirs.counts, theirs.start, theirs.exponent = other.counts.copy(), other.start, other.exponent
        theirs._coarsen(self.exponent)
        offset = theirs.start - self.start
        self.counts[offset : offset + len(theirs.counts)] += theirs.counts
        self.count += other.count
        self.nonfinite += other.nonfinite
        self.zeros += other.zeros

    def coarsened(self, max_bins: int) -> Histogram:
        """A copy whose width is doubled until it has at most ``max_bins`` bins (exact)."""
        copy = Histogram(self.capacity)
        copy.__dict__.update(self.__dict__)
        copy.counts = self.counts.copy()
        if copy.exponent is not None:
            exponent = copy.exponent
            while (
                math.floor(self.max / math.ldexp(1.0, exponent)) - math.floor(self.min / math.ldexp(1.0, exponent)) + 1
            ) > max_bins:
                exponent += 1
            copy._coarsen(exponent)
        return copy

    def nonzero_counts(self) -> np.ndarray:
        """Counts (float64) without the exact zeros, which every grid represents exactly."""
        counts = self.counts.astype(np.float64)
        if 0 <= -self.start < len(counts):
            counts[-self.start] -= self.zeros
        return counts

    def cdf_at(self, points: np.ndarray, drop_zeros: bool = False) -> np.ndarray:
        """Counts at or below each point, taking values as uniform within a bin.

        The outer edges are pulled in to the exact min and max, so no mass is spread
        beyond the values actually seen.
        """
        counts = self.nonzero_counts() if drop_zeros else self.counts
        cum = np.concatenate(([0.0], np.cumsum(counts, dtype=np.float64)))
        return np.interp(points, np.clip(self.edges, self.min, self.max), cum)

    def resample(self, lo: float, hi: float, bins: int, drop_zeros: bool = False) -> np.ndarray:
        """Counts on ``bins`` equal bins over [lo, hi] (uniform within a source bin).

        Why: the KL search is defined on a fixed grid (e.g. 2048 bins over [0, |x|max]);
        the source bins are at most half as wide, so mass moves by under half a grid bin.
        """
        edges = np.linspace(lo, hi, bins + 1)
        return np.maximum(np.diff(self.cdf_at(edges, drop_zeros)), 0.0)

    def resample_abs(self, bins: int, drop_zeros: bool = False) -> np.ndarray:
        """Counts of |x| on ``bins`` equal bins over [0, |x|max]."""
        top = max(abs(self.min), abs(self.max))
        pos = self.resample(0.0, top, bins, drop_zeros)
        neg = self.resample(-top, 0.0, bins, drop_zeros)[::-1]
        return pos + neg

    def quantile(self, q: float) -> float:
        """Value below which a fraction q of the values lie (linear within a bin)."""
        cum = np.concatenate(([0.0], np.cumsum(self.counts, dtype=np.float64)))
        target = q * cum[-1]
        k = int(np.searchsorted(cum, target, side="left"))
        if k <= 0:
            return self.min
        if k >= len(cum):
            return self.max
        lo_c, hi_c = cum[k - 1], cum[k]
        frac = 0.0 if hi_c == lo_c else (target - lo_c) / (hi_c - lo_c)
        edges = self.edges
        value = edges[k - 1] + frac * (edges[k] - edges[k - 1])
        return float(min(max(value, self.min), self.max))

    def to_json(self) -> dict:
        """Edges and counts with empty outer bins trimmed."""
        nz = np.flatnonzero(self.counts)
        if nz.size == 0:
            return {"edges": [], "counts": []}
        a, b = int(nz[0]), int(nz[-1]) + 1
        return {"edges": self.edges[a : b + 1].tolist(), "counts": self.counts[a:b].tolist()}
