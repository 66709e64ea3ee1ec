"""The float outputs kept for later measurements: the same errors as running the float model again,
and nothing held once they pass their bound."""
from __future__ import annotations

import math

import numpy as np

from app.quant.calibration import RandomData
from app.quant.evaluate import Reference, compare, compare_batches, summed
from app.quant.model import input_specs
from app.quant.runtime import session
from tests.quant.models import conv_net


def test_kept_outputs_measure_as_the_float_model_and_respect_their_bound() -> None:
    reference = session(conv_net(seed=3).SerializeToString())
    candidate = session(conv_net(seed=4).SerializeToString())  # another model: a large, known error
    data = RandomData(input_specs(conv_net()), 5, seed=1)
    record = Reference(reference, [])
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
    small = Reference(reference, list(data.batches()), limit=100)  # less than one batch
    assert not small.complete and small.batches == [] and small.expected == [] and small.samples == 0
