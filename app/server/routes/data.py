"""Routes that move a session's data: the model download, and weights as .npy out and in."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from python_multipart.multipart import parse_options_header

from ..deps import AppSettings, OpenSession, Store
from ..downloads import content_disposition, file_response, open_files
from ..errors import NotFound, TooLarge, UnsupportedMedia
from ..middleware import streams_body
from ..schemas.common import ERRORS
from ..schemas.sessions import EditsResponse
from ..services.tensors import replace_tensor, tensor_npy

CHUNK = 1 << 20
NPY_TYPES = {"application/octet-stream", "application/x-npy", "application/npy", ""}

router = APIRouter(tags=["data"], responses=ERRORS)


@router.get(
    "/api/sessions/{session_id}/model",
    summary="Download the current model (.onnx, or .zip with its external data)",
    responses={200: {"content": {"application/octet-stream": {}, "application/zip": {}}}},
)
def download_model(session_id: str, handle: OpenSession) -> StreamingResponse:
    paths = handle.export()
    return file_response(open_files(paths), paths[0].stem)


def _tensor_name(path: str) -> str:
    if not path.endswith(".npy") or len(path) <= 4:
        raise NotFound("not_found", "tensor downloads end in .npy: /tensors/<url-encoded name>.npy")
    return path[:-4]


@router.get(
    "/api/sessions/{session_id}/tensors/{name:path}",
    summary="Download a weight (an initializer, or a Constant node's value) as .npy (name URL-encoded, then .npy)",
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_tensor(session_id: str, name: str, store: Store) -> StreamingResponse:
    tensor_name = _tensor_name(name)
    header, flat = tensor_npy(store, session_id, tensor_name)

    def body() -> Iterator[bytes]:
        yield header
        for start in range(0, flat.size, CHUNK):
            yield flat[start : start + CHUNK].tobytes()

    return StreamingResponse(
        body(),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(len(header) + flat.size),
            "Content-Disposition": content_disposition(f"{tensor_name}.npy"),
        },
    )


@router.put(
    "/api/sessions/{session_id}/tensors/{name:path}",
    response_model=EditsResponse,
    summary="Replace a weight (an initializer, or a Constant node's value) from an uploaded .npy (same "
    "dtype and shape); undoable like any edit",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
@streams_body(*NPY_TYPES)
async def put_tensor(
    session_id: str,
    name: str,
    request: Request,
    store: Store,
    settings: AppSettings,
    expected_version: int | None = Query(default=None),
) -> dict[str, Any]:
    tensor_name = _tensor_name(name)
    content_type = parse_options_header(request.headers.get("content-type", ""))[0].decode("latin-1")
    if content_type not in NPY_TYPES:
        raise UnsupportedMedia(
            "unsupported_media_type",
            f"send the .npy file as the raw body (application/octet-stream), not {content_type}",
        )
    await run_in_threadpool(store.session_dir, session_id)  # a malformed id is a 404 before any upload
    staging = await run_in_threadpool(store.staging_dir)
    try:
        path = staging / "tensor.npy"
        await _receive_body(request, path, settings.max_tensor_upload_bytes)
        return await run_in_threadpool(
            replace_tensor, store, session_id, tensor_name, path, expected_version, settings.max_run_elements
        )
    finally:
        await run_in_threadpool(shutil.rmtree, staging, True)


async def _receive_body(request: Request, path: Path, limit: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge("too_large", f"the body is {int(declared):,} bytes; the limit is {limit:,}", {"limit": limit})
    received = 0
    with open(path, "wb") as out:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise TooLarge("too_large", f"the body is over the limit of {limit:,} bytes", {"limit": limit})
            out.write(chunk)
