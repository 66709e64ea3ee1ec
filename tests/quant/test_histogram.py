"""The histogram merges exactly, whatever the batching, and its derived views keep the mass."""

from __future__ import annotations

import numpy as np

from app.quant.histogram import Histogram


def _batches(rng: np.random.Generator) -> list[np.ndarray]:
    return [
        (rng.standard_normal(5000) * s + o).astype(np.float32)
        for s, o in [(0.01, 0), (1, 2), (30, -5), (3, 0), (300, 100)]
    ]


def test_batched_equals_whole_and_numpy() -> None:
    batches = _batches(np.random.default_rng(0))
    streamed = Histogram()
    for b in batches:
        streamed.add(b)
    whole = Histogram()
    whole.add(np.concatenate(batches))
    assert (streamed.exponent, streamed.start) == (whole.exponent, whole.start)
    assert np.array_equal(streamed.counts, whole.counts)
    allx = np.concatenate(batches)
    assert streamed.min == float(allx.min()) and streamed.max == float(allx.max())
    reference, _ = np.histogram(allx.astype(np.float64), bins=whole.edges)
    assert np.array_equal(reference, whole.counts)
    assert len(whole.counts) <= whole.capacity


def test_merge_in_any_order() -> None:
    batches = _batches(np.random.default_rng(1))
    whole = Histogram()
    whole.add(np.concatenate(batches))
    left, right = Histogram(), Histogram()
    for b in batches[:2]:
        left.add(b)
    for b in batches[2:]:
        right.add(b)
    right.merge(left)
    assert np.array_equal(right.counts, whole.counts) and right.count == whole.count


def test_views_keep_mass_and_zeros_are_counted() -> None:
    x = np.maximum(np.random.default_rng(2).standard_normal(20000), 0).astype(np.float32)
    h = Histogram()
    h.add(x)
    assert h.zeros == int(np.sum(x == 0))
    assert abs(h.resample_abs(2048).sum() - x.size) < 1e-6 * x.size
    assert abs(h.resample(0.0, h.max, 2048, drop_zeros=True).sum() - np.count_nonzero(x)) < 1e-6 * x.size
    assert abs(h.quantile(0.75) - np.quantile(x, 0.75)) < 2 * h.width


def test_values_on_edges_and_far_below_the_width_land_in_their_own_bin() -> None:
    """Bin k holds [k*w, (k+1)*w) exactly: edges, -0.0, subnormals and negatives 2**-40 of a bin wide
    (where a subtraction in float64 before the floor would round -tiny + k up to k)."""
    h = Histogram(capacity=16)
    h.add(np.array([-5.0, 5.0], dtype=np.float32))  # width 1, bins [-5, 5]
    assert h.width == 1.0
    edges = np.arange(-5, 6, dtype=np.float32)
    tiny = np.array([-1e-12, 1e-12, -1e-30, 1e-30, -1e-45, 1e-45, -0.0, 0.0], dtype=np.float32)
    near = np.concatenate([np.nextafter(edges, np.float32(-np.inf)), np.nextafter(edges, np.float32(np.inf))])
    x = np.concatenate([edges, tiny, near[(near >= -5) & (near <= 5)]]).astype(np.float32)
    h.add(x)
    allx = np.concatenate([[-5.0, 5.0], x]).astype(np.float64)
    expected = np.bincount((np.floor(allx) - h.start).astype(np.intp), minlength=len(h.counts))
    assert np.array_equal(h.counts, expected)
    assert h.zeros == 3  # the edge 0.0, -0.0 and 0.0; the subnormals 1e-45 are not zero


def test_a_subnormal_in_wide_bins_is_not_rounded_to_zero() -> None:
    """x / w of -1e-45 with w = 2**18 underflows to -0.0 in float32 and would land in the bin above 0."""
    h = Histogram(capacity=16)
    h.add(np.array([-(2.0**20), 2.0**20], dtype=np.float32))
    assert h.width == 2.0**18
    x = np.array([-1e-45, 1e-45, -1e-38, 0.0], dtype=np.float32)
    before = h.counts.copy()
    h.add(x)
    added = h.counts - before
    assert added[-h.start - 1] == 2 and added[-h.start] == 2  # the negatives below 0, 1e-45 and 0 above
