"""Hybrid int16 recommendation: the fewest tensors to promote so every output meets its target.

Candidates are ranked by the predicted uint8 noise of each tensor (from its histogram);
each candidate set is closed over small gaps so that int16 forms contiguous regions
(every precision boundary costs a converter on the NPU). The smallest top-k that meets
the target is found by exponential then binary search, each step measured with a real
QDQ model in onnxruntime.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from onnx import ModelProto

from app.quant.model import ActivationTensor


@dataclass(frozen=True)
class HybridResult:
    """The recommendation and how it was measured."""

    int16: list[str]
    outputs_sqnr_db: dict[str, float | None]
    target_sqnr_db: dict[str, float | None]
    meets_target: bool
    boundaries: int
    evaluations: int


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


def max_steps(candidates: int) -> int:
    """The most measurements search() makes over this many candidates: k = 0, the doubling, k = n, the
    bisection; a progress bar's total that never grows."""
    rounds = math.ceil(math.log2(candidates)) if candidates > 1 else 0
    return 2 * rounds + 2


def search(ranking: list[str], neighbours: dict[str, set[str]],
           measure: Callable[[set[str]], dict[str, float | None]], target: dict[str, float | None],
           on_step: Callable[[int], None] | None = None) -> HybridResult:
    """Smallest top-k of ``ranking`` (gap-closed) whose measured outputs all meet ``target``."""
    cache: dict[int, tuple[set[str], dict[str, float | None]]] = {}

    def evaluate(k: int) -> bool:
        if k not in cache:
            chosen = close_gaps(neighbours, set(ranking[:k])) if k else set()
            cache[k] = (chosen, measure(chosen))
            if on_step is not None:
                on_step(len(cache))
        measured = cache[k][1]
        return all(t is None or (measured.get(o) is not None and measured[o] >= t) for o, t in target.items())

    n = len(ranking)
    if evaluate(0):
        best = 0
    else:
        lo, hi = 0, 1
        while hi < n and not evaluate(hi):
            lo, hi = hi, min(2 * hi, n)
        if hi >= n and not evaluate(n):
            best = n
        else:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if evaluate(mid):
                    hi = mid
                else:
                    lo = mid
            best = hi
    met = evaluate(best)
    chosen, measured = cache[best]
    order = {name: i for i, name in enumerate(ranking)}
    return HybridResult(sorted(chosen, key=lambda name: order.get(name, n)), measured, target, met,
                        boundaries(neighbours, chosen), len(cache))
