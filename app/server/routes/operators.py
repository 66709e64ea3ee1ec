"""The route of the operators a session's model may use (the editor's "add node" dialog)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from ..deps import Store
from ..schemas.editor import Operators
from ..services.operators import operators

router = APIRouter(prefix="/api/sessions", tags=["editor"])


@router.get(
    "/{session_id}/operators",
    response_model=Operators,
    summary="Operators of the model's opsets, with inputs and typed attributes",
)
async def get_operators(session_id: str, store: Store) -> dict[str, Any]:
    return await run_in_threadpool(operators, store, session_id)
