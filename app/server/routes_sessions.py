"""Routes of a session's life and of editing: create, inspect, delete, graph view, edits, undo/redo."""
from __future__ import annotations

import shutil
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from onnx import TensorProto

from ..graph import ModelDocument, WorkbenchError, shape_report
from ..graph.changes import describe_changes
from ..graph.script import script_document
from ..graph.values import attribute_to_json
from ..graph.weights import weight_tensor
from ..view.graph_delta import MAX_VERSION, graph_delta_gzip
from ..view.graph_view import graph_view_gzip
from .errors import ApiError, unreadable_model
from .gzip_response import gzipped_json_response
from .middleware import streams_body
from .schemas import (EditsRequest, EditsResponse, ErrorResponse, HistoryResponse, SessionCreated, SessionInfo,
                      UndoResponse, file_field, multipart_body)
from .session_store import SessionStore
from .uploads import receive_multipart, stage_model

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse}
                                          for code in (400, 404, 409, 413, 415, 422, 507)}  # 507: disk full

UPLOAD_BODY = multipart_body({
    "file": file_field("the .onnx model, or one .zip holding the model and its data files"),
    "data": file_field("external-data files of the model, named as the model refers to them", many=True),
}, required=["file"])

NODE_ATTRIBUTE_ELEMENTS = 4096  # tensor attributes up to this size come with their values

router = APIRouter(prefix="/api/sessions", tags=["sessions"], responses=ERRORS)


def store_of(request: Request) -> SessionStore:
    return request.app.state.store


def weight_of(doc: ModelDocument, name: str) -> TensorProto:
    """A weight named in the URL: an initializer or a Constant node's value (404 when neither)."""
    tensor = weight_tensor(doc.main, name)
    if tensor is None:
        raise ApiError(404, "unknown_tensor", f"no initializer or Constant node output named '{name}'",
                       {"tensor": name})
    return tensor


@router.post("", status_code=201, response_model=SessionCreated, openapi_extra=UPLOAD_BODY,
             summary="Upload a model and open a session on it")
@streams_body("multipart/form-data")
async def create_session(request: Request, response: Response) -> dict[str, Any]:
    store = store_of(request)
    staging = await run_in_threadpool(store.staging_dir)
    try:
        upload = await receive_multipart(request, staging / "original", request.app.state.settings.max_upload_bytes,
                                         {"file", "data"})
        model_path = await run_in_threadpool(stage_model, upload, staging / "original")
        filename = upload.file("file").name  # type: ignore[union-attr]
        session_id, summary = await run_in_threadpool(store.create, staging, model_path, filename)
    finally:
        if staging.exists():
            await run_in_threadpool(shutil.rmtree, staging, True)
    response.headers["Location"] = f"/api/sessions/{session_id}"
    return {"id": session_id, "version": 0, "summary": summary}


@router.get("/{session_id}", response_model=SessionInfo, summary="Session summary, version, undo/redo state")
def get_session(session_id: str, request: Request) -> dict[str, Any]:
    return store_of(request).info(session_id)


@router.delete("/{session_id}", status_code=204, summary="Delete a session and all its files")
def delete_session(session_id: str, request: Request) -> Response:
    store_of(request).delete(session_id)
    return Response(status_code=204)


@router.get("/{session_id}/graph", summary="The graph view the browser draws (gzip-compressed JSON)",
            responses={200: {"content": {"application/json": {}}, "description": "see app/server/graph_view.py"}})
def get_graph(session_id: str, request: Request) -> Response:
    with store_of(request).open(session_id) as handle:
        packed = graph_view_gzip(session_id, handle.doc)
        etag = f'"{session_id[:8]}-{handle.doc.version}"'
    return _versioned_json(request, packed, etag)


@router.get("/{session_id}/graph/delta", summary="What changed in the graph view since an earlier version",
            responses={200: {"content": {"application/json": {}}, "description": "see app/server/graph_delta.py"}})
def get_graph_delta(session_id: str, request: Request, since: int = Query(
        ge=0, le=MAX_VERSION, description="the version of the view the client holds")) -> Response:
    with store_of(request).open(session_id) as handle:
        packed = graph_delta_gzip(session_id, handle.doc, since)
        etag = f'"{session_id[:8]}-{since}-{handle.doc.version}"'
    return _versioned_json(request, packed, etag)


def _versioned_json(request: Request, packed: bytes, etag: str) -> Response:
    """Gzipped JSON fixed by the versions in its ETag: 304 when the client already holds it."""
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return gzipped_json_response(request, packed,
                                 {"ETag": etag, "Vary": "Accept-Encoding", "Cache-Control": "private, no-cache"})


@router.get("/{session_id}/nodes/{node_id:path}", summary="One node of the main graph in full (id URL-encoded)")
def get_node(session_id: str, node_id: str, request: Request) -> dict[str, Any]:
    with store_of(request).open(session_id) as handle:
        scope = handle.doc.main
        try:
            node = scope.find_node(node_id)
        except WorkbenchError as err:
            raise ApiError(404, err.code, err.message, err.details) from None
        return {"id": scope.node_id(node), "name": node.name, "op_type": node.op_type, "domain": node.domain,
                "inputs": list(node.input), "outputs": list(node.output), "doc_string": node.doc_string,
                "attributes": {a.name: attribute_to_json(a, max_elements=NODE_ATTRIBUTE_ELEMENTS)
                               for a in node.attribute}}


@router.post("/{session_id}/edits", response_model=EditsResponse, summary="Apply edits, all or nothing")
def post_edits(session_id: str, body: EditsRequest, request: Request) -> dict[str, Any]:
    with store_of(request).open(session_id) as handle:
        applied = handle.apply(body.edits, body.expected_version)
        return {"version": handle.doc.version, "applied": len(applied),
                "changes": describe_changes(handle.doc, applied)}


EXPECTED = Query(default=None, description="refuse with 409 unless the session is at this version")


@router.post("/{session_id}/undo", response_model=UndoResponse, summary="Undo the last applied edit")
def post_undo(session_id: str, request: Request, expected_version: int | None = EXPECTED) -> dict[str, Any]:
    with store_of(request).open(session_id) as handle:
        handle.check_version(expected_version)
        tx = _conflict_on_empty(handle.undo)
        return {"version": handle.doc.version, "edit": tx.edit, "changes": describe_changes(handle.doc, [tx], undo=True)}


@router.post("/{session_id}/redo", response_model=UndoResponse, summary="Redo the last undone edit")
def post_redo(session_id: str, request: Request, expected_version: int | None = EXPECTED) -> dict[str, Any]:
    with store_of(request).open(session_id) as handle:
        handle.check_version(expected_version)
        tx = _conflict_on_empty(handle.redo)
        return {"version": handle.doc.version, "edit": tx.edit, "changes": describe_changes(handle.doc, [tx])}


def _conflict_on_empty(step: Any) -> Any:
    """Nothing to undo/redo is a conflict with the session's state, not a malformed request."""
    try:
        return step()
    except WorkbenchError as err:
        if err.code in ("nothing_to_undo", "nothing_to_redo"):
            raise ApiError(409, err.code, err.message) from None
        raise


@router.get("/{session_id}/history", response_model=HistoryResponse, summary="Applied and undone edits")
def get_history(session_id: str, request: Request) -> dict[str, Any]:
    with store_of(request).open(session_id) as handle:
        history = handle.doc.history
        return {"version": handle.doc.version, "done": [tx.edit for tx in history.done],
                "undone": [tx.edit for tx in reversed(history.undone)]}


@router.get("/{session_id}/script", summary="The applied edits as an edit script (replayable with /api/apply)")
def get_script(session_id: str, request: Request) -> dict[str, Any]:
    with store_of(request).open(session_id) as handle:
        return script_document(handle.doc.history.script())


@router.get("/{session_id}/shapes", summary="Static-shape report: what is not static, and why")
def get_shapes(session_id: str, request: Request) -> dict[str, Any]:
    with store_of(request).open(session_id) as handle:
        try:
            return shape_report(handle.doc)
        except WorkbenchError:
            raise
        except Exception as err:  # onnx's inference can fail in ways it has no error type for
            raise unreadable_model("analysed for shapes", err) from None
