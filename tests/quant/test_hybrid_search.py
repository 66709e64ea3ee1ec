"""The hybrid search's progress total is known before it starts and never exceeded."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.quant.hybrid import max_steps, search


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 600), needed=st.integers(0, 601))
def test_search_measures_at_most_max_steps(n, needed):
    ranking = [f"t{i}" for i in range(n)]
    steps: list[int] = []

    def measure(chosen):  # the outputs meet the target once `needed` tensors are promoted
        return {"y": 30.0 if len(chosen) >= needed else 10.0}

    result = search(ranking, {}, measure, {"y": 20.0}, steps.append)
    assert steps == list(range(1, len(steps) + 1)) and len(steps) <= max_steps(n)
    assert len(result.int16) == (min(needed, n) if needed <= n else n)
