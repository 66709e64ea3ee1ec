"""The statistics pass keeps at most two batches of activations alive, however slow its workers are."""

from __future__ import annotations

import time
import weakref
from concurrent.futures import thread

from app.quant import stats as stats_module
from app.quant.analysis import quantizable_points
from app.quant.calibration import RandomData
from app.quant.histogram import DEFAULT_CAPACITY
from app.quant.model import input_specs
from app.quant.stats import collect_statistics
from tests.quant.models import conv_net


class _Outputs(list):
    """ORT's output list, weak-referenceable so the test can see when a batch is released."""


def test_a_batch_is_released_before_the_run_after_next(monkeypatch) -> None:
    model = conv_net()
    alive: list[weakref.ref] = []
    stale: list[int] = []
    real_run = stats_module.run

    def run(sess, outputs, feeds):
        # batch k may still be folded while ORT runs batch k+1, but not while it runs k+2
        stale.append(sum(ref() is not None for ref in alive[:-1]))
        values = _Outputs(real_run(sess, outputs, feeds))
        alive.append(weakref.ref(values))
        return values

    # a worker that the OS leaves waiting right after it has finished a task (a loaded machine)
    real_item_run = thread._WorkItem.run

    def slow_item_run(self):
        real_item_run(self)
        time.sleep(0.05)

    monkeypatch.setattr(stats_module, "run", run)
    monkeypatch.setattr(thread._WorkItem, "run", slow_item_run)
    data = RandomData(input_specs(model), 6)
    result = collect_statistics(model, quantizable_points(model), data)
    assert len(alive) == 6 and stale == [0] * 6
    assert all(ref() is None for ref in alive)
    # the retained state is the histogram and the fixed-size sample, whatever the sample count
    assert all(st.sample.size == 4096 and st.histogram.count > 0 for st in result.values())


def test_retained_state_does_not_grow_with_samples() -> None:
    model = conv_net()
    points = quantizable_points(model)
    for n in (2, 16):
        result = collect_statistics(model, points, RandomData(input_specs(model), n))
        for st in result.values():
            assert st.sample.size == 4096 and len(st.histogram.counts) <= DEFAULT_CAPACITY
