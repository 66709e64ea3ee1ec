"""Runs side by side (app.runtime.session.in_lanes): results in order, no read-ahead beyond the free lanes,
errors raised to the caller, and an analysis whose numbers do not depend on how many lanes ran it."""

from __future__ import annotations

import threading
import time

import pytest

from app.quant import QuantOptions, analyze, build_report
from app.quant.calibration import RandomData
from app.quant.model import input_specs
from app.runtime import session as runtime
from tests.quant.models import picodet_like


def test_results_come_in_order_and_items_are_taken_only_for_free_lanes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "LANES", 2)
    taken = []
    running, most = set(), 0
    lock = threading.Lock()

    def items():
        for k in range(8):
            taken.append(k)
            yield k

    def work(k: int) -> int:
        nonlocal most
        with lock:
            running.add(k)
            most = max(most, len(running))
        time.sleep(0.02 if k % 2 else 0.05)  # later items finish first
        with lock:
            running.discard(k)
        return k * k

    for k, result in enumerate(runtime.in_lanes(work, items())):
        assert result == k * k
        assert len(taken) <= k + 2, "items are read only when a lane is free"
    assert most == 2


def test_an_error_in_one_item_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "LANES", 2)

    def work(k: int) -> int:
        if k == 3:
            raise ValueError("item 3 is bad")
        return k

    got = []
    with pytest.raises(ValueError, match="item 3 is bad"):
        for result in runtime.in_lanes(work, range(6)):
            got.append(result)
    assert got == [0, 1, 2]


def test_the_analysis_measures_the_same_in_one_lane_and_in_two(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions on one thread side by side give the numbers of one session on all cores, one run after
    the other: the lanes change the time, never the verdict."""
    model = picodet_like()
    reports = {}
    for lanes in (1, 2):
        monkeypatch.setattr(runtime, "LANES", lanes)
        analysis = analyze(model, RandomData(input_specs(model), 6, seed=3), QuantOptions(search_samples=2))
        report = build_report(analysis)
        reports[lanes] = (
            report["end_to_end"],
            report["sensitivity"],
            report["accumulated"],
            report["local"],
            report["error_source"],
            report["recommendation"]["curve"],
        )
    assert reports[1] == reports[2]


def test_work_inside_a_lane_runs_its_own_items_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A curve point measured in a lane measures its batches in lanes too: no more runs than lanes at once."""
    monkeypatch.setattr(runtime, "LANES", 2)
    running, most = 0, 0
    lock = threading.Lock()

    def leaf(k: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)
        with lock:
            running -= 1
        return k

    def outer(k: int) -> list[int]:
        return list(runtime.in_lanes(leaf, range(k * 3, k * 3 + 3)))

    assert list(runtime.in_lanes(outer, range(4))) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    assert most == 2


def test_a_single_item_leaves_the_lanes_to_its_own_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """One curve point measured alone (a refinement step) measures its batches side by side: a lone item
    that took a lane would leave the other core idle for the whole measurement."""
    monkeypatch.setattr(runtime, "LANES", 2)
    running, most = 0, 0
    lock = threading.Lock()
    both = threading.Barrier(2, timeout=5)

    def leaf(k: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        both.wait()  # returns only once two leaves run at once
        with lock:
            running -= 1
        return k

    def outer(k: int) -> list[int]:
        return list(runtime.in_lanes(leaf, [k, k + 1]))

    assert list(runtime.in_lanes(outer, [0])) == [[0, 1]]
    assert most == 2
