"""Routes that move data: model download, initializer .npy get/put, running and comparing, stateless apply."""
from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from python_multipart.multipart import parse_options_header
from starlette.background import BackgroundTask

from ..graph import EditError, WorkbenchError, load_model, save_model
from ..graph.changes import describe_changes
from ..graph.io import read_tensor
from ..graph.script import parse_script
from .downloads import EDITED, content_disposition, file_response, open_files, stream_file
from .errors import Invalid, NotFound, TooLarge, UnsupportedMedia, unreadable_model
from .middleware import streams_body
from .routes_sessions import ERRORS, store_of, weight_of
from ..runtime.compare import compare_outputs
from ..runtime.npy import check_size, read_header, read_npz
from .runner import random_model_inputs, run_model
from .schemas import MAX_SEED, EditsResponse, file_field, multipart_body
from .uploads import Upload, receive_multipart, stage_model

CHUNK = 1 << 20
NPY_TYPES = {"application/octet-stream", "application/x-npy", "application/npy", ""}

router = APIRouter(tags=["data"], responses=ERRORS)

RUN_BODY = multipart_body({
    "inputs": file_field(".npz with one array per model input; random inputs when absent"),
    "dims": {"type": "string", "description": "JSON object: sizes of named dims for random inputs "
                                              "(others are 1), e.g. {\"batch\": 1, \"seq\": 128}"},
    "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED, "description": "seed of the random inputs"},
}, optional=True)

APPLY_BODY = multipart_body({
    "file": file_field("the .onnx model or a .zip of it"),
    "data": file_field("external-data files of the model", many=True),
    "script": file_field("edit script JSON {\"format\": \"onnx-workbench/edits\", ...}"),
}, required=["file", "script"])


# -- download ----------------------------------------------------------------------------------
@router.get("/api/sessions/{session_id}/model", summary="Download the current model (.onnx, or .zip with its "
            "external data)", responses={200: {"content": {"application/octet-stream": {}, "application/zip": {}}}})
def download_model(session_id: str, request: Request) -> StreamingResponse:
    with store_of(request).open(session_id) as handle:
        paths = handle.export()
        files = open_files(paths)
    return file_response(files, paths[0].stem)


# -- tensors -----------------------------------------------------------------------------------
def _tensor_name(path: str) -> str:
    if not path.endswith(".npy") or len(path) <= 4:
        raise NotFound("not_found", "tensor downloads end in .npy: /tensors/<url-encoded name>.npy")
    return path[:-4]


@router.get("/api/sessions/{session_id}/tensors/{name:path}", summary="Download a weight (an initializer, or "
            "a Constant node's value) as .npy (name URL-encoded, then .npy)", responses={200: {"content": {"application/octet-stream": {}}}})
def get_tensor(session_id: str, name: str, request: Request) -> StreamingResponse:
    tensor_name = _tensor_name(name)
    with store_of(request).open(session_id) as handle:
        array = read_tensor(weight_of(handle.doc, tensor_name), handle.doc.base_dir)
    if array.dtype == object:  # string tensors: fixed-width unicode is what .npy holds without pickles
        array = np.vectorize(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v),
                             otypes=[str])(array) if array.size else array.astype(str)
    header = _npy_header(array)
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8) if array.size else np.zeros(0, np.uint8)

    def body() -> Iterator[bytes]:
        yield header
        for start in range(0, flat.size, CHUNK):
            yield flat[start:start + CHUNK].tobytes()

    return StreamingResponse(body(), media_type="application/octet-stream",
                             headers={"Content-Length": str(len(header) + flat.size),
                                      "Content-Disposition": content_disposition(f"{tensor_name}.npy")})


def _npy_header(array: np.ndarray) -> bytes:
    """The .npy header of a C-ordered array, so the data can follow in chunks."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, np.lib.format.header_data_from_array_1_0(np.ascontiguousarray(array)))
    return out.getvalue()


@router.put("/api/sessions/{session_id}/tensors/{name:path}", response_model=EditsResponse,
            summary="Replace a weight (an initializer, or a Constant node's value) from an uploaded .npy (same dtype and "
                    "shape); undoable like any edit",
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
@streams_body(*NPY_TYPES)
async def put_tensor(session_id: str, name: str, request: Request,
                     expected_version: int | None = Query(default=None)) -> dict[str, Any]:
    tensor_name = _tensor_name(name)
    store = store_of(request)
    settings = request.app.state.settings
    content_type = parse_options_header(request.headers.get("content-type", ""))[0].decode("latin-1")
    if content_type not in NPY_TYPES:
        raise UnsupportedMedia("unsupported_media_type", f"send the .npy file as the raw body "
                       f"(application/octet-stream), not {content_type}")
    await run_in_threadpool(store.session_dir, session_id)  # a malformed id is a 404 before any upload
    staging = await run_in_threadpool(store.staging_dir)
    try:
        path = staging / "tensor.npy"
        await _receive_body(request, path, settings.max_tensor_upload_bytes)
        return await run_in_threadpool(_replace_tensor, store, session_id, tensor_name, path, expected_version,
                                       settings.max_run_elements)
    finally:
        await run_in_threadpool(shutil.rmtree, staging, True)


async def _receive_body(request: Request, path: Path, limit: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge("too_large", f"the body is {int(declared):,} bytes; the limit is {limit:,}",
                       {"limit": limit})
    received = 0
    with open(path, "wb") as out:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise TooLarge("too_large", f"the body is over the limit of {limit:,} bytes", {"limit": limit})
            out.write(chunk)


def _replace_tensor(store: Any, session_id: str, tensor_name: str, path: Path, expected_version: int | None,
                    max_elements: int) -> dict[str, Any]:
    with open(path, "rb") as f:
        check_size(read_header(f), path.stat().st_size - f.tell(), max_elements, f"tensor '{tensor_name}'")
    with store.open(session_id) as handle:
        weight_of(handle.doc, tensor_name)
        edit = {"op": "set_initializer", "name": tensor_name,
                "npy_base64": base64.b64encode(path.read_bytes()).decode("ascii")}
        applied = handle.apply([edit], expected_version)
        return {"version": handle.doc.version, "applied": len(applied),
                "changes": describe_changes(handle.doc, applied)}


# -- run and compare -----------------------------------------------------------------------------
async def _receive_run_request(request: Request, staging: Path) -> Upload:
    content_type = parse_options_header(request.headers.get("content-type", ""))[0]
    if not content_type and request.headers.get("content-length", "0") in ("", "0"):
        return Upload()  # no body: random inputs
    if content_type == b"application/x-www-form-urlencoded":  # only the small fields dims and seed
        form = await request.form()
        return Upload(fields={k: v for k, v in form.items() if isinstance(v, str)})
    return await receive_multipart(request, staging / "in", request.app.state.settings.max_tensor_upload_bytes,
                                   {"inputs"})


def _run_options(upload: Upload) -> tuple[dict[str, int], int]:
    try:
        dims = json.loads(upload.fields.get("dims") or "{}")
        seed = int(upload.fields.get("seed") or "0")
    except (ValueError, json.JSONDecodeError):
        raise Invalid("bad_field", "'dims' must be a JSON object of dim name to size, 'seed' an integer") \
            from None
    if not isinstance(dims, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1 << 31
                                             for v in dims.values()):
        raise Invalid("bad_field", "'dims' must map dim names to positive integers, e.g. {\"batch\": 1}")
    if not 0 <= seed <= MAX_SEED:
        raise Invalid("bad_field", f"'seed' must be an integer from 0 to {MAX_SEED}, not {seed}")
    return dims, seed


def _inputs_for(handle: Any, upload: Upload, settings: Any) -> dict[str, np.ndarray]:
    file = upload.file("inputs")
    if file is not None:
        return read_npz(file.path, settings.max_run_elements, settings.max_tensor_upload_bytes)
    dims, seed = _run_options(upload)
    return random_model_inputs(handle.doc, dims, seed, settings.max_run_elements)


def _npz_response(arrays: dict[str, np.ndarray], staging: Path) -> StreamingResponse:
    out = staging / "outputs.npz"
    np.savez(out, **arrays)
    handle = open(out, "rb")
    return StreamingResponse(stream_file(handle), media_type="application/octet-stream",
                             background=BackgroundTask(shutil.rmtree, staging, True),
                             headers={"Content-Disposition": content_disposition("outputs.npz"),
                                      "Content-Length": str(out.stat().st_size)})


@router.post("/api/sessions/{session_id}/run", openapi_extra=RUN_BODY,
             summary="Run the current model in onnxruntime; outputs as .npz",
             responses={200: {"content": {"application/octet-stream": {}}}})
@streams_body("multipart/form-data")
async def run(session_id: str, request: Request) -> StreamingResponse:
    store = store_of(request)
    await run_in_threadpool(store.session_dir, session_id)
    staging = await run_in_threadpool(store.staging_dir)
    try:
        upload = await _receive_run_request(request, staging)

        def work() -> StreamingResponse:
            with store.open(session_id) as handle:
                inputs = _inputs_for(handle, upload, request.app.state.settings)
                model = handle.export_to(staging / "model")
            return _npz_response(run_model(model, inputs), staging)

        return await run_in_threadpool(work)
    except BaseException:
        await run_in_threadpool(shutil.rmtree, staging, True)
        raise


@router.post("/api/sessions/{session_id}/compare", openapi_extra=RUN_BODY,
             summary="Run the original upload and the current model on the same inputs and compare outputs")
@streams_body("multipart/form-data")
async def compare_models(session_id: str, request: Request) -> dict[str, Any]:
    store = store_of(request)
    await run_in_threadpool(store.session_dir, session_id)
    staging = await run_in_threadpool(store.staging_dir)
    try:
        upload = await _receive_run_request(request, staging)

        def work() -> dict[str, Any]:
            with store.open(session_id) as handle:
                inputs = _inputs_for(handle, upload, request.app.state.settings)
                model = handle.export_to(staging / "model")
                original = handle.original_model()
            before = run_model(original, inputs)
            after = run_model(model, inputs)
            report = compare_outputs(before, after)
            report["inputs"] = {n: {"dtype": str(a.dtype), "shape": list(a.shape)} for n, a in inputs.items()}
            return report

        return await run_in_threadpool(work)
    finally:
        await run_in_threadpool(shutil.rmtree, staging, True)


# -- stateless ---------------------------------------------------------------------------------
@router.post("/api/apply", openapi_extra=APPLY_BODY, tags=["stateless"],
             summary="Apply an edit script to an uploaded model and get the edited model back (no session)",
             responses={200: {"content": {"application/octet-stream": {}, "application/zip": {}}}})
@streams_body("multipart/form-data")
async def apply_script(request: Request) -> StreamingResponse:
    store = store_of(request)
    settings = request.app.state.settings
    staging = await run_in_threadpool(store.staging_dir)
    try:
        upload = await receive_multipart(request, staging / "original", settings.max_upload_bytes,
                                         {"file", "data", "script"})

        def work() -> StreamingResponse:
            script_file = upload.file("script")
            if script_file is not None:
                upload.files.remove(script_file)
                text = script_file.path.read_bytes()
                script_file.path.unlink()
            elif "script" in upload.fields:
                text = upload.fields["script"].encode()
            else:
                raise Invalid("missing_field", "the upload has no 'script' part (the edit script JSON)")
            try:
                edits = parse_script(json.loads(text))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise EditError(f"the edit script is not valid JSON: {err}", code="bad_script") from None
            model_path = stage_model(upload, staging / "original")
            try:
                doc = load_model(model_path)
            except WorkbenchError:
                raise
            except Exception as err:
                raise unreadable_model("read", err) from None
            doc.apply(edits)
            out = staging / "out"
            out.mkdir()
            paths = save_model(doc, out / f"{model_path.stem}{EDITED}.onnx")
            return file_response(open_files(paths), paths[0].stem,
                                 background=BackgroundTask(shutil.rmtree, staging, True))

        return await run_in_threadpool(work)
    except BaseException:
        await run_in_threadpool(shutil.rmtree, staging, True)
        raise
