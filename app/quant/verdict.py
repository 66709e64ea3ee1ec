"""The verdict on a quantized configuration: good, marginal or poor, from its measured model outputs.

A relative target ("within 3 dB of all-int16") says nothing when all-int16 itself is poor, so the
grade is judged against absolute thresholds on every float output, and the worst output decides.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from app.quant.errors import QuantError
from app.quant.evaluate import OutputError

GRADES = ("good", "marginal", "poor")


@dataclass(frozen=True)
class Thresholds:
    """Good: cosine and SQNR both at least their good values; marginal: cosine at least its own."""

    good_cosine: float = 0.99
    good_sqnr_db: float = 20.0
    marginal_cosine: float = 0.95

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in asdict(self).values()):
            raise QuantError("the verdict thresholds must be finite numbers")
        if not -1 <= self.marginal_cosine <= self.good_cosine <= 1:
            raise QuantError("the verdict thresholds need -1 <= marginal cosine <= good cosine <= 1")

    def grade(self, error: OutputError) -> str:
        """One output's grade; an output with no signal to compare is poor (nothing shows it is good)."""
        cosine, sqnr = error.cosine, error.sqnr_db
        if cosine is None or sqnr is None:
            return "poor"
        if cosine >= self.good_cosine and sqnr >= self.good_sqnr_db:
            return "good"
        return "marginal" if cosine >= self.marginal_cosine else "poor"

    def grade_outputs(self, outputs: dict[str, OutputError]) -> str:
        """The worst output's grade (poor when there is none)."""
        return GRADES[max((GRADES.index(self.grade(e)) for e in outputs.values()), default=GRADES.index("poor"))]


def verdict(measured: dict[str, dict[str, OutputError]], thresholds: Thresholds) -> dict[str, dict]:
    """{configuration: {grade, outputs: {name: {sqnr_db, cosine, grade}}, thresholds}}, the worst output's
    grade for each configuration measured end to end."""
    result = {}
    for label, outputs in measured.items():
        graded = {name: {**error.to_json(), "grade": thresholds.grade(error)} for name, error in outputs.items()}
        result[label] = {
            "grade": thresholds.grade_outputs(outputs),
            "outputs": graded,
            "thresholds": asdict(thresholds),
        }
    return result
