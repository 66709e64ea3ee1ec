"""The float outputs kept for later measurements: the same errors as running the float model again,
and nothing held once they pass their bound."""
from __future__ import annotations

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
    head = compare(record.head(2), {"c": candidate}, [], 2)["c"]
    assert {n: e.sqnr_db for n, e in head.items()} == {n: e.sqnr_db for n, e in summed(direct, 2).items()}
    small = Reference(reference, list(data.batches()), limit=100)  # less than one batch
    assert not small.complete and small.batches == [] and small.expected == [] and small.samples == 0
