"""The float outputs kept for later measurements: the same errors as running the float model again,
and nothing held once they pass their bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.quant.analysis import analyze, quantizable_points
from app.quant.calibration import RandomData
from app.quant.evaluate import Reference, compare, compare_batches, float_outputs, summed
from app.quant.model import input_specs
from app.quant.runtime import session
from app.quant.stats import collect_statistics
from tests.quant.models import conv_net


def test_kept_outputs_measure_as_the_float_model_and_respect_their_bound() -> None:
    reference = session(conv_net(seed=3).SerializeToString())
    candidate = session(conv_net(seed=4).SerializeToString())  # another model: a large, known error
    data = RandomData(input_specs(conv_net()), 5, seed=1)
    record = Reference(float_outputs(reference))
    direct = compare_batches(reference, {"c": candidate}, data.batches(), 5, record=record)["c"]
    assert record.complete and record.samples == 5 and len(record.batches) == 5
    kept = compare(record, {"c": candidate}, [], 5)["c"]
    again = compare(reference, {"c": candidate}, data.batches(), 5)["c"]
    for name, error in kept.items():
        assert error.sqnr_db == again[name].sqnr_db and np.isfinite(error.sqnr_db)
    first, rest = record.split(2)
    assert (first.samples, rest.samples) == (2, 3)
    head = compare(first, {"c": candidate}, [], 2)["c"]
    assert {n: e.sqnr_db for n, e in head.items()} == {n: e.sqnr_db for n, e in summed(direct, 2).items()}
    tail = compare(rest, {"c": candidate}, [], 3)["c"]
    whole = summed(direct)
    for name, error in head.items():  # the two parts add up to the whole
        assert math.isclose((error + tail[name]).sqnr_db, whole[name].sqnr_db, rel_tol=1e-12)
    small = Reference.measured(reference, data.batches(), limit=100)  # less than one batch
    assert not small.complete and small.batches == [] and small.expected == [] and small.samples == 0


def test_the_statistics_pass_keeps_the_float_outputs_the_end_to_end_phase_would_compute() -> None:
    """The analysis takes the float outputs from its statistics pass instead of running the float model
    again: they are the model's outputs on every batch, and the verdicts come out as from a second run."""
    model = conv_net(seed=2)
    specs = input_specs(model)
    record = Reference(float_outputs(session(model.SerializeToString())))
    collect_statistics(model, quantizable_points(model), RandomData(specs, 6, seed=5), record=record)
    again = Reference.measured(session(model.SerializeToString()), RandomData(specs, 6, seed=5).batches())
    assert record.complete and record.samples == 6 and record.outputs == again.outputs
    for kept, run_again in zip(record.expected, again.expected, strict=True):
        for x, y in zip(kept, run_again, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)

    from_stats = analyze(model, RandomData(specs, 6, seed=5))  # the statistics pass keeps the outputs
    from_run = analyze(model, RandomData(specs, 6, seed=5), validation=RandomData(specs, 6, seed=5))  # it may not
    for label, errors in from_run.end_to_end.items():
        for name, error in errors.items():
            assert from_stats.end_to_end[label][name].sqnr_db == pytest.approx(error.sqnr_db, abs=1e-3), label
