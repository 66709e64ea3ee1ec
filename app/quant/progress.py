"""Progress reporting and cancellation hooks for a background job runner."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from app.quant.errors import QuantCancelled

#: progress(done, total, phase): called after each batch / step of a phase.
ProgressCallback = Callable[[int, int, str], None]
#: A callable returning True, or an event that is set (threading.Event or anything with
#: ``is_set()``, such as a job runner's cancel event), cancels the analysis.
CancelCheck = Callable[[], bool] | threading.Event | Any


def check_cancel(cancel: CancelCheck | None) -> None:
    """Raise QuantCancelled if the caller asked to stop."""
    if cancel is None:
        return
    stop = cancel.is_set() if hasattr(cancel, "is_set") else cancel()
    if stop:
        raise QuantCancelled("quantization analysis cancelled")


def report(progress: ProgressCallback | None, done: int, total: int, phase: str) -> None:
    """Forward progress if anyone listens."""
    if progress is not None:
        progress(done, total, phase)
