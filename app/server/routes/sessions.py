"""Routes of a session's life: upload a model to open one, read its state, delete it."""

from __future__ import annotations

import shutil
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from ..deps import AppSettings, OpenSession, Store
from ..middleware import streams_body
from ..schemas.common import ERRORS
from ..schemas.sessions import UPLOAD_BODY, SessionCreated, SessionInfo
from ..uploads import receive_multipart, stage_model

router = APIRouter(prefix="/api/sessions", tags=["sessions"], responses=ERRORS)


@router.post(
    "",
    status_code=201,
    response_model=SessionCreated,
    openapi_extra=UPLOAD_BODY,
    summary="Upload a model and open a session on it",
)
@streams_body("multipart/form-data")
async def create_session(request: Request, response: Response, store: Store, settings: AppSettings) -> dict[str, Any]:
    staging = await run_in_threadpool(store.staging_dir)
    try:
        upload = await receive_multipart(
            request, staging / "original", settings.max_upload_bytes, {"file", "data"}, settings
        )
        model_path = await run_in_threadpool(stage_model, upload, staging / "original")
        filename = upload.file("file").name  # type: ignore[union-attr]
        session_id, summary = await run_in_threadpool(store.create, staging, model_path, filename)
    finally:
        if staging.exists():
            await run_in_threadpool(shutil.rmtree, staging, True)
    response.headers["Location"] = f"/api/sessions/{session_id}"
    return {"id": session_id, "version": 0, "summary": summary}


@router.get("/{session_id}", response_model=SessionInfo, summary="Session summary, version, undo/redo state")
def get_session(session_id: str, handle: OpenSession) -> dict[str, Any]:
    return handle.info()


@router.delete("/{session_id}", status_code=204, summary="Delete a session and all its files")
def delete_session(session_id: str, store: Store) -> Response:
    store.delete(session_id)
    return Response(status_code=204)
