"""Routes that run a session's model in onnxruntime: its outputs as .npz, or compared with the original's."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from python_multipart.multipart import parse_options_header
from starlette.background import BackgroundTask

from ..deps import AppSettings, Store
from ..downloads import content_disposition, stream_file
from ..middleware import streams_body
from ..schemas.common import ERRORS, MAX_SEED, file_field, multipart_body
from ..schemas.data import CompareReport
from ..services.runs import compare_session, run_session, write_npz
from ..settings import Settings
from ..uploads import Upload, receive_multipart

router = APIRouter(tags=["data"], responses=ERRORS)

RUN_BODY = multipart_body(
    {
        "inputs": file_field(".npz with one array per model input; random inputs when absent"),
        "dims": {
            "type": "string",
            "description": "JSON object: sizes of named dims for random inputs "
            '(others are 1), e.g. {"batch": 1, "seq": 128}',
        },
        "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED, "description": "seed of the random inputs"},
    },
    optional=True,
)


async def _receive_run_request(request: Request, staging: Path, settings: Settings) -> Upload:
    content_type = parse_options_header(request.headers.get("content-type", ""))[0]
    if not content_type and request.headers.get("content-length", "0") in ("", "0"):
        return Upload()  # no body: random inputs
    if content_type == b"application/x-www-form-urlencoded":  # only the small fields dims and seed
        form = await request.form()
        return Upload(fields={k: v for k, v in form.items() if isinstance(v, str)})
    return await receive_multipart(request, staging / "in", settings.max_tensor_upload_bytes, {"inputs"}, settings)


def _npz_response(arrays: dict[str, np.ndarray], staging: Path) -> StreamingResponse:
    out = staging / "outputs.npz"
    write_npz(out, arrays)
    handle = open(out, "rb")
    return StreamingResponse(
        stream_file(handle),
        media_type="application/octet-stream",
        background=BackgroundTask(shutil.rmtree, staging, True),
        headers={"Content-Disposition": content_disposition("outputs.npz"), "Content-Length": str(out.stat().st_size)},
    )


@router.post(
    "/api/sessions/{session_id}/run",
    openapi_extra=RUN_BODY,
    summary="Run the current model in onnxruntime; outputs as .npz",
    responses={200: {"content": {"application/octet-stream": {}}}},
)
@streams_body("multipart/form-data")
async def run(session_id: str, request: Request, store: Store, settings: AppSettings) -> StreamingResponse:
    await run_in_threadpool(store.session_dir, session_id)
    staging = await run_in_threadpool(store.staging_dir)
    try:
        upload = await _receive_run_request(request, staging, settings)

        def work() -> StreamingResponse:
            return _npz_response(run_session(store, session_id, upload, staging, settings), staging)

        return await run_in_threadpool(work)
    except BaseException:
        await run_in_threadpool(shutil.rmtree, staging, True)
        raise


@router.post(
    "/api/sessions/{session_id}/compare",
    openapi_extra=RUN_BODY,
    response_model=CompareReport,
    summary="Run the original upload and the current model on the same inputs and compare outputs",
)
@streams_body("multipart/form-data")
async def compare_models(session_id: str, request: Request, store: Store, settings: AppSettings) -> dict[str, Any]:
    await run_in_threadpool(store.session_dir, session_id)
    staging = await run_in_threadpool(store.staging_dir)
    try:
        upload = await _receive_run_request(request, staging, settings)
        return await run_in_threadpool(compare_session, store, session_id, upload, staging, settings)
    finally:
        await run_in_threadpool(shutil.rmtree, staging, True)
