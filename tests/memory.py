"""Peak memory of a block of test code, sampled from outside it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil


@contextmanager
def peak_rss_growth(pid: int | None = None) -> Iterator[list[int]]:
    """Samples a process's RSS (this one's by default) every few ms; the list holds the peak growth
    over the start when done."""
    process = psutil.Process(pid)
    start = process.memory_info().rss
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = [0]
    try:
        yield result
    finally:
        done.set()
        sampler.join()
        result[0] = max(peak[0], process.memory_info().rss) - start
