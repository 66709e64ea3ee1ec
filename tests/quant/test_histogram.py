"""The histogram merges exactly, whatever the batching, and its derived views keep the mass."""

from __future__ import annotations

import numpy as np

from app.quant.histogram import Histogram


def _batches(rng: np.random.Generator) -> list[np.ndarray]:
    return [(rng.standard_normal(5000) * s + o).astype(np.float32)
            for s, o in [(0.01, 0), (1, 2), (30, -5), (3, 0), (300, 100)]]


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
