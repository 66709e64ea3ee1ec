"""The route the editor's quantization panels need beyond the quantization service: a weight's histogram
and per-channel ranges, derived from the session's model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from ..deps import Store
from ..schemas.editor import WeightView
from ..services.weights import weight_view as view_of

router = APIRouter(prefix="/api/sessions", tags=["editor"])


@router.get(
    "/{session_id}/weight-view/{name:path}",
    response_model=WeightView,
    summary="A weight's histogram and per-channel min/max along an axis (initializer or Constant node)",
)
async def weight_view(
    session_id: str,
    name: str,
    store: Store,
    axis: int = Query(0, description="the channel axis (negative counts from the end)"),
) -> dict[str, Any]:
    return await run_in_threadpool(view_of, store, session_id, name, axis)
