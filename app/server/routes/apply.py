"""The stateless route: an edit script applied to an uploaded model, the edited model answered."""

from __future__ import annotations

import shutil

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from ..deps import AppSettings, Store
from ..downloads import file_response, open_files
from ..middleware import streams_body
from ..schemas.common import ERRORS, file_field, multipart_body
from ..services.apply import apply_script as apply_to
from ..uploads import receive_multipart

router = APIRouter(tags=["data"], responses=ERRORS)

APPLY_BODY = multipart_body(
    {
        "file": file_field("the .onnx model or a .zip of it"),
        "data": file_field("external-data files of the model", many=True),
        "script": file_field('edit script JSON {"format": "onnx-workbench/edits", ...}'),
    },
    required=["file", "script"],
)


@router.post(
    "/api/apply",
    openapi_extra=APPLY_BODY,
    tags=["stateless"],
    summary="Apply an edit script to an uploaded model and get the edited model back (no session)",
    responses={200: {"content": {"application/octet-stream": {}, "application/zip": {}}}},
)
@streams_body("multipart/form-data")
async def apply_script(request: Request, store: Store, settings: AppSettings) -> StreamingResponse:
    staging = await run_in_threadpool(store.staging_dir)
    try:
        upload = await receive_multipart(
            request, staging / "original", settings.max_upload_bytes, {"file", "data", "script"}, settings
        )

        def work() -> StreamingResponse:
            paths = apply_to(upload, staging)
            return file_response(
                open_files(paths), paths[0].stem, background=BackgroundTask(shutil.rmtree, staging, True)
            )

        return await run_in_threadpool(work)
    except BaseException:
        await run_in_threadpool(shutil.rmtree, staging, True)
        raise
