"""The state of a background job, as GET and DELETE /api/jobs/{id} answer it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class JobState(BaseModel):
    id: str
    kind: str
    session: str | None
    state: str = Field(description="queued, running, succeeded, failed, cancelled or interrupted")
    progress: float
    message: str
    detail: dict[str, Any] | None = Field(
        default=None,
        description="structured progress of the job's current "
        'phase, e.g. {"phase", "done", "total", "unit", "percent"}',
    )
    result: Any = None
    error: dict[str, Any] | None = None
    created: float
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False
