"""The precision curve: its progress total is known before it starts and never exceeded, its knee is
the fewest measured int16 points that meet the goal, and a falling point is explained."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.quant.evaluate import OutputError
from app.quant.hybrid import MIN_CURVE_POINTS, max_steps, precision_curve


def error(sqnr_db: float) -> dict[str, OutputError]:
    """One output whose measured SQNR is ``sqnr_db`` (cosine near 1)."""
    return {"y": OutputError(signal=1.0, noise=10 ** (-sqnr_db / 10), dot=1.0, candidate=1.0)}


def grade(errors: dict[str, OutputError]) -> str:
    return "good" if errors["y"].sqnr_db >= 20 else "poor"


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 600), needed=st.integers(0, 601))
def test_curve_measures_at_most_max_steps_and_knee_is_fewest_meeting(n, needed):
    ranking = [f"t{i}" for i in range(n)]
    steps: list[int] = []

    def measure(chosen):  # the outputs are good once `needed` tensors are promoted
        return error(30.0 if len(chosen) >= needed else 10.0)

    known = {0: measure(set()), n: measure(set(ranking))}
    result = precision_curve(ranking, {}, measure, grade, known, on_step=steps.append)
    assert steps == list(range(1, len(steps) + 1)) and len(steps) <= max_steps(n)
    ks = [p.k for p in result.curve]
    assert ks == sorted(set(ks)) and ks[0] == 0 and ks[-1] == n
    assert len(ks) >= min(MIN_CURVE_POINTS, n + 1)
    knee = result.curve[result.knee]
    assert result.meets_target == (needed <= n) and result.note is None
    if needed <= n:
        assert len(knee.int16) >= needed and knee.grade == "good"
        assert all(p.grade == "poor" for p in result.curve[: result.knee])  # nothing fewer measured meets it
    assert result.int16 == knee.int16 == ranking[: knee.k]


def test_knee_without_a_good_point_is_within_the_margin_of_the_best() -> None:
    ranking = [f"t{i}" for i in range(40)]
    result = precision_curve(ranking, {}, lambda chosen: error(5.0 + min(len(chosen), 10)), grade, {}, margin_db=3.0)
    assert not result.meets_target and "no point meets" in result.rule
    best = max(p.worst_sqnr_db for p in result.curve)
    assert result.curve[result.knee].worst_sqnr_db >= best - 3.0
    assert all(p.worst_sqnr_db < best - 3.0 for p in result.curve[: result.knee])


def test_a_falling_point_is_explained() -> None:
    ranking = [f"t{i}" for i in range(32)]
    falls = {4: 2.0}  # k = 4 measures worse than k = 2
    result = precision_curve(ranking, {}, lambda chosen: error(falls.get(len(chosen), 10.0 + len(chosen))), grade, {})
    assert result.note is not None and "k=4 measures 2.0 dB" in result.note
