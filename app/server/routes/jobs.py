"""Routes of background jobs: state as JSON or as server-sent events, and cancelling."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ..deps import Jobs
from ..jobs import TERMINAL, JobRunner
from ..schemas.common import ERRORS
from ..schemas.jobs import JobState

router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=ERRORS)

SSE_POLL = 0.25
SSE_KEEPALIVE = 15.0
SSE_MAX_SECONDS = 6 * 3600


@router.get(
    "/{job_id}",
    response_model=JobState,
    summary="A job's state; with 'Accept: text/event-stream', server-sent events until it ends",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def get_job(job_id: str, request: Request, jobs: Jobs) -> Any:
    state = await run_in_threadpool(jobs.get, job_id)
    if "text/event-stream" not in request.headers.get("accept", ""):
        return state
    return StreamingResponse(
        _events(jobs, job_id, state, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(jobs: JobRunner, job_id: str, state: dict[str, Any], request: Request) -> AsyncIterator[bytes]:
    """One 'state' event per change; the stream ends after the job's final state."""
    sent = None
    started = last_sent = time.monotonic()
    while True:
        text = json.dumps(state)
        if text != sent:
            yield f"event: state\ndata: {text}\n\n".encode()
            sent, last_sent = text, time.monotonic()
        elif time.monotonic() - last_sent > SSE_KEEPALIVE:
            yield b": keep-alive\n\n"
            last_sent = time.monotonic()
        if (
            state["state"] in TERMINAL
            or time.monotonic() - started > SSE_MAX_SECONDS
            or await request.is_disconnected()
        ):
            return
        await asyncio.sleep(SSE_POLL)
        state = await run_in_threadpool(jobs.get, job_id)


@router.delete("/{job_id}", response_model=JobState, summary="Cancel a job (it stops at its next check)")
def cancel_job(job_id: str, jobs: Jobs) -> dict[str, Any]:
    return jobs.cancel(job_id)
