"""The verdict grades measured outputs against absolute thresholds: never good unless they are met."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.quant.errors import QuantError
from app.quant.evaluate import OutputError
from app.quant.verdict import Thresholds, verdict


def error_of(noise_scale: float, seed: int = 0) -> OutputError:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(4096)
    error = OutputError()
    error.add(x, x + noise_scale * rng.standard_normal(4096))
    return error


def test_grades_at_the_thresholds():
    t = Thresholds()
    clean, noisy, bad = error_of(0.01), error_of(0.15), error_of(1.5)
    assert clean.sqnr_db > 20 and clean.cosine > 0.99 and t.grade(clean) == "good"
    assert noisy.cosine >= 0.95 and noisy.sqnr_db < 20 and t.grade(noisy) == "marginal"
    assert bad.cosine < 0.95 and t.grade(bad) == "poor"
    assert t.grade(OutputError()) == "poor"  # nothing measured: nothing shows it is good
    strict = Thresholds(good_sqnr_db=60.0)
    assert strict.grade(clean) == "marginal"


def test_the_worst_output_decides_and_the_report_states_the_thresholds():
    result = verdict(
        {
            "hybrid": {"boxes": error_of(0.01), "scores": error_of(1.5)},
            "int16/minmax": {"boxes": error_of(0.001), "scores": error_of(0.002)},
        },
        Thresholds(),
    )
    assert result["hybrid"]["grade"] == "poor" and result["hybrid"]["outputs"]["boxes"]["grade"] == "good"
    assert result["int16/minmax"]["grade"] == "good"
    assert result["hybrid"]["thresholds"] == {"good_cosine": 0.99, "good_sqnr_db": 20.0, "marginal_cosine": 0.95}
    assert math.isclose(result["hybrid"]["outputs"]["boxes"]["cosine"], error_of(0.01).cosine)


@pytest.mark.parametrize("kwargs", [{"good_cosine": 1.5}, {"marginal_cosine": 0.999}, {"good_sqnr_db": math.nan}])
def test_thresholds_that_make_no_sense_are_refused(kwargs):
    with pytest.raises(QuantError):
        Thresholds(**kwargs)
