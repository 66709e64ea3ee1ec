"""Routes of editing a session: edits all or nothing, undo and redo, the history, the edit script."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from ...graph.script import script_document
from ..deps import OpenSession, Store
from ..schemas.common import ERRORS
from ..schemas.sessions import EditScript, EditsRequest, EditsResponse, HistoryResponse, UndoResponse
from ..services import sessions

router = APIRouter(prefix="/api/sessions", tags=["sessions"], responses=ERRORS)

EXPECTED = Query(default=None, description="refuse with 409 unless the session is at this version")


@router.post("/{session_id}/edits", response_model=EditsResponse, summary="Apply edits, all or nothing")
def post_edits(session_id: str, body: EditsRequest, store: Store) -> dict[str, Any]:
    with store.open(session_id) as handle:
        return sessions.apply_edits(handle, body.edits, body.expected_version)


@router.post("/{session_id}/undo", response_model=UndoResponse, summary="Undo the last applied edit")
def post_undo(session_id: str, store: Store, expected_version: int | None = EXPECTED) -> dict[str, Any]:
    with store.open(session_id) as handle:
        return sessions.undo(handle, expected_version)


@router.post("/{session_id}/redo", response_model=UndoResponse, summary="Redo the last undone edit")
def post_redo(session_id: str, store: Store, expected_version: int | None = EXPECTED) -> dict[str, Any]:
    with store.open(session_id) as handle:
        return sessions.redo(handle, expected_version)


@router.get("/{session_id}/history", response_model=HistoryResponse, summary="Applied and undone edits")
def get_history(session_id: str, handle: OpenSession) -> dict[str, Any]:
    return sessions.history(handle)


@router.get(
    "/{session_id}/script",
    response_model=EditScript,
    summary="The applied edits as an edit script (replayable with /api/apply)",
)
def get_script(session_id: str, handle: OpenSession) -> dict[str, Any]:
    return script_document(handle.doc.history.script())
