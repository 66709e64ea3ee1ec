"""Helpers shared by the benchmarks: cached inputs, timing statistics, memory, markdown output.

Benchmarks print figures for people to read and compare across commits; they never assert.
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE_ROOT = Path(tempfile.gettempdir()) / "onnx-workbench-bench"
READY_MARKER = ".complete"


def cached_folder(name: str, build: Callable[[Path], None], **params: object) -> Path:
    """A folder holding generated inputs, built once per parameter set and reused by later runs.

    The marker file is written last, so a run killed halfway rebuilds instead of using half a model.
    """
    key = "_".join(f"{k}{v}" for k, v in sorted(params.items()))
    folder = CACHE_ROOT / f"{name}_{key}"
    if (folder / READY_MARKER).exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        stale.unlink()
    build(folder)
    (folder / READY_MARKER).touch()
    return folder


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Elapsed seconds of the block, in the one-item list yielded."""
    elapsed = [0.0]
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed[0] = time.perf_counter() - start


def median_p90(samples: list[float]) -> tuple[float, float]:
    """Median and 90th percentile (nearest rank, so a few samples still give a real one)."""
    return statistics.median(samples), percentile(samples, 90)


def percentile(samples: list[float], q: int) -> float:
    """The q-th percentile by nearest rank: always one of the samples."""
    ordered = sorted(samples)
    return ordered[max(0, -(-len(ordered) * q // 100) - 1)]


def peak_rss_bytes() -> int:
    """The process's peak resident set so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}" if seconds < 1 else f"{seconds * 1000:.0f}"


def mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"
