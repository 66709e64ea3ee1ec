"""The route of a weight's histogram in the editor's sidebar."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from ..deps import Store
from ..schemas.editor import WeightHistogram
from ..services.weights import weight_histogram

router = APIRouter(prefix="/api/sessions", tags=["editor"])


@router.get(
    "/{session_id}/histogram/{name:path}",
    response_model=WeightHistogram,
    response_model_exclude_unset=True,
    summary="Histogram of a weight's values (40 bins), "
    "an initializer's or a Constant node's, with its size and statistics",
)
async def get_histogram(session_id: str, name: str, store: Store) -> dict[str, Any]:
    return await run_in_threadpool(weight_histogram, store, session_id, name)
