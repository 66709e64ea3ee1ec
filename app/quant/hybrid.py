"""Hybrid int16: a measured precision curve and its knee.

The points are ranked by their measured sensitivity (app.quant.sensitivity: the model outputs with
that point alone in 8 bits). The curve measures real QDQ models with the top k of that ranking in
16 bit for k = 0, 1, 4, 16, ... and all points; each set is closed over small gaps so that int16 forms
contiguous regions (every precision boundary costs a converter on the NPU). The knee, the
recommendation, is the smallest k that meets the goal: the verdict's "good" on every output (or an
absolute SQNR target); when even all-16-bit misses it, the smallest k within a margin of the best
point measured. Between the last k that misses and the first that meets, a bisection narrows it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from onnx import ModelProto

from app.quant.evaluate import OutputError, worst_sqnr
from app.quant.model import ActivationTensor
from app.runtime.session import in_lanes

#: Fewest measured points of a curve (k = 0 and all-16-bit included) when there are enough points.
MIN_CURVE_POINTS = 6
#: Bisection steps between the last k that misses the goal and the first that meets it.
REFINE_STEPS = 2
#: A fall smaller than this (dB) is measurement noise, not worth a note.
FALL_DB = 0.5


@dataclass(frozen=True)
class CurvePoint:
    """One measured point of the curve: the top ``k`` of the ranking asked for, the gap-closed set in
    16 bit, and the outputs' errors."""

    k: int
    int16: list[str]
    outputs: dict[str, OutputError]
    grade: str

    @property
    def worst_sqnr_db(self) -> float:
        return worst_sqnr(self.outputs)

    def to_json(self) -> dict:
        return {
            "k": self.k,
            "int16": self.int16,
            "grade": self.grade,
            "outputs": {name: e.to_json() for name, e in self.outputs.items()},
        }


@dataclass(frozen=True)
class HybridResult:
    """The curve, its knee (the recommendation) and how it was chosen."""

    curve: list[CurvePoint]
    knee: int
    rule: str
    meets_target: bool
    note: str | None
    boundaries: int
    evaluations: int

    @property
    def int16(self) -> list[str]:
        return self.curve[self.knee].int16

    @property
    def outputs_sqnr_db(self) -> dict[str, float | None]:
        return {name: e.sqnr_db for name, e in self.curve[self.knee].outputs.items()}


def point_graph(model: ModelProto, points: list[ActivationTensor]) -> dict[str, set[str]]:
    """Neighbouring quantization points (either direction), seen through non-point tensors."""
    names = {p.name for p in points}
    producers = {}
    for node in model.graph.node:
        for out in node.output:
            producers[out] = node
    neighbours: dict[str, set[str]] = {p: set() for p in names}

    def sources(tensor: str) -> set[str]:
        """Points feeding ``tensor``'s producer, through fused/unquantized tensors."""
        found: set[str] = set()
        seen = {tensor}
        stack = [tensor]
        while stack:
            node = producers.get(stack.pop())
            for inp in node.input if node is not None else ():
                if inp in names:
                    found.add(inp)
                elif inp and inp not in seen:
                    seen.add(inp)
                    stack.append(inp)
        return found

    for p in names:
        for src in sources(p):
            neighbours[p].add(src)
            neighbours[src].add(p)
    return neighbours


def boundaries(neighbours: dict[str, set[str]], promoted: set[str]) -> int:
    """Edges between points of different precision."""
    return sum(1 for a, ns in neighbours.items() for b in ns if a < b and ((a in promoted) != (b in promoted)))


def close_gaps(neighbours: dict[str, set[str]], promoted: set[str]) -> set[str]:
    """Add points with more promoted than unpromoted neighbours (fewer boundaries)."""
    result = set(promoted)
    changed = True
    while changed:
        changed = False
        for p, ns in neighbours.items():
            if p in result or not ns:
                continue
            inside = sum(1 for n in ns if n in result)
            if inside > len(ns) - inside:
                result.add(p)
                changed = True
    return result


#: Growth of k between the curve's first measured points (1, 4, 16, 64, ...): six points reach a few
#: hundred layers, and the bisection resolves the knee where it lies.
GROWTH = 4


def curve_steps(candidates: int) -> list[int]:
    """The k measured before any refinement: 0, then growing by GROWTH, then all."""
    steps, k = [0], 1
    while k < candidates:
        steps.append(k)
        k *= GROWTH
    return steps + [candidates] if candidates else steps


def max_steps(candidates: int) -> int:
    """The most QDQ measurements ``precision_curve`` makes: a progress bar's total that never grows."""
    steps = len(curve_steps(candidates))
    return steps + REFINE_STEPS + max(0, min(MIN_CURVE_POINTS, candidates + 1) - steps)


class _Curve:
    """The points measured so far, by k, and the goal they are graded against."""

    def __init__(
        self,
        ranking: list[str],
        neighbours: dict[str, set[str]],
        measure: Callable[[set[str]], dict[str, OutputError]],
        grade: Callable[[dict[str, OutputError]], str],
        measured: dict[int, dict[str, OutputError]],
        target_sqnr_db: float | None,
        on_step: Callable[[int], None] | None,
    ) -> None:
        self.ranking, self.neighbours, self.measure, self.grade = ranking, neighbours, measure, grade
        self.measured, self.target_sqnr_db, self.on_step = measured, target_sqnr_db, on_step
        self.order = {name: i for i, name in enumerate(ranking)}
        self.points: dict[int, CurvePoint] = {}
        self.runs = 0

    def at(self, *ks: int) -> None:
        """Measure the ``ks`` not known yet, side by side (each measurement is a whole QDQ session)."""
        todo = [k for k in dict.fromkeys(ks) if k not in self.points]
        chosen = {k: close_gaps(self.neighbours, set(self.ranking[:k])) if k else set() for k in todo}
        new = [k for k in todo if k not in self.measured]
        errors = dict(self.measured)
        for k, result in zip(new, in_lanes(lambda k: self.measure(chosen[k]), new), strict=True):
            errors[k] = result
            self.runs += 1
            if self.on_step is not None:
                self.on_step(self.runs)
        for k in todo:
            ordered = sorted(chosen[k], key=lambda name: self.order.get(name, len(self.ranking)))
            self.points[k] = CurvePoint(k, ordered, errors[k], self.grade(errors[k]))

    def point(self, k: int) -> CurvePoint:
        self.at(k)
        return self.points[k]

    def meets(self, p: CurvePoint) -> bool:
        if self.target_sqnr_db is not None:
            return p.worst_sqnr_db >= self.target_sqnr_db
        return p.grade == "good"

    def refine(self, first: int) -> int:
        """Bisect between the last k that misses the goal and ``first``, the first that meets it."""
        below = max((k for k in self.points if k < first), default=None)
        for _ in range(REFINE_STEPS):
            if below is None or first - below <= 1:
                break
            mid = (below + first) // 2
            if self.meets(self.point(mid)):
                first = mid
            else:
                below = mid
        return first

    def fill(self) -> None:
        """At least MIN_CURVE_POINTS points: halve the widest gap until there are."""
        while len(self.points) < min(MIN_CURVE_POINTS, len(self.ranking) + 1):
            low, high = max(pairwise(sorted(self.points)), key=lambda pair: pair[1] - pair[0])
            self.at((low + high) // 2)


def precision_curve(
    ranking: list[str],
    neighbours: dict[str, set[str]],
    measure: Callable[[set[str]], dict[str, OutputError]],
    grade: Callable[[dict[str, OutputError]], str],
    measured: dict[int, dict[str, OutputError]],
    target_sqnr_db: float | None = None,
    margin_db: float = 3.0,
    on_step: Callable[[int], None] | None = None,
) -> HybridResult:
    """Measure the curve over ``ranking`` (worst first) and pick its knee.

    ``measured``: points already known by k (k = 0, the base, and k = len(ranking), all 16-bit, are
    measured as whole configurations anyway). The goal is ``grade`` "good" on the worst output, or
    with ``target_sqnr_db`` that SQNR on every output. The first points are measured side by side.
    """
    curve = _Curve(ranking, neighbours, measure, grade, measured, target_sqnr_db, on_step)
    curve.at(*curve_steps(len(ranking)))
    points = curve.points
    first = next((k for k in sorted(points) if curve.meets(points[k])), None)
    if first is not None:
        knee, met = curve.refine(first), True
        rule = (
            f"the fewest int16 points with every output at or above {target_sqnr_db} dB"
            if target_sqnr_db is not None
            else "the fewest int16 points graded good on every output"
        )
    else:
        best = max(p.worst_sqnr_db for p in points.values())
        knee = min(k for k, p in points.items() if p.worst_sqnr_db >= best - margin_db)
        met = False
        rule = (
            f"no point meets the goal; the fewest int16 points within {margin_db} dB of the best measured "
            f"({best:.1f} dB)"
            if math.isfinite(best)
            else "no point meets the goal"
        )
    curve.fill()
    if met:  # a filled point may meet the goal with fewer points
        knee = min(k for k in points if curve.meets(points[k]))
    ordered = [points[k] for k in sorted(points)]
    index = next(i for i, p in enumerate(ordered) if p.k == knee)
    chosen = set(ordered[index].int16)
    return HybridResult(ordered, index, rule, met, _falls(ordered), boundaries(neighbours, chosen), curve.runs)


def _falls(curve: list[CurvePoint]) -> str | None:
    """Why the curve is not non-decreasing, if it is not: which points fall below an earlier one."""
    falls, best = [], curve[0]
    for p in curve[1:]:
        if p.worst_sqnr_db < best.worst_sqnr_db - FALL_DB:
            falls.append(f"k={p.k} measures {p.worst_sqnr_db:.1f} dB, below k={best.k} ({best.worst_sqnr_db:.1f} dB)")
        if p.worst_sqnr_db > best.worst_sqnr_db:
            best = p
    if not falls:
        return None
    return (
        "; ".join(falls) + ". Errors of different layers partly cancel at the model outputs: promoting some "
        "of them to 16 bit can remove the error that cancelled another's, so more int16 is not always better; "
        "these are measurements, not predictions."
    )
