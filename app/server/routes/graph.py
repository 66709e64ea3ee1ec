"""Routes of a session's graph: the view the browser draws and its deltas, one node in full, the
static-shape report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from ...view.graph_delta import MAX_VERSION, graph_delta_gzip
from ...view.graph_view import graph_view_gzip
from ..deps import OpenSession, Store
from ..gzip_response import gzipped_json_response
from ..schemas.common import ERRORS
from ..schemas.sessions import GraphDelta, GraphView, NodeDetail, ShapeReport
from ..services.sessions import node_detail, shapes

router = APIRouter(prefix="/api/sessions", tags=["sessions"], responses=ERRORS)


@router.get(
    "/{session_id}/graph",
    response_model=GraphView,
    summary="The graph view the browser draws (gzip-compressed JSON)",
    responses={200: {"content": {"application/json": {}}, "description": "see app/view/graph_view.py"}},
)
def get_graph(session_id: str, request: Request, handle: OpenSession) -> Response:
    packed = graph_view_gzip(session_id, handle.doc)
    return _versioned_json(request, packed, f'"{session_id[:8]}-{handle.doc.version}"')


@router.get(
    "/{session_id}/graph/delta",
    response_model=GraphDelta,
    summary="What changed in the graph view since an earlier version",
    responses={200: {"content": {"application/json": {}}, "description": "see app/server/graph_delta.py"}},
)
def get_graph_delta(
    session_id: str,
    request: Request,
    store: Store,
    since: int = Query(ge=0, le=MAX_VERSION, description="the version of the view the client holds"),
) -> Response:
    with store.open(session_id) as handle:
        packed = graph_delta_gzip(session_id, handle.doc, since)
        etag = f'"{session_id[:8]}-{since}-{handle.doc.version}"'
    return _versioned_json(request, packed, etag)


def _versioned_json(request: Request, packed: bytes, etag: str) -> Response:
    """Gzipped JSON fixed by the versions in its ETag: 304 when the client already holds it."""
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return gzipped_json_response(
        request, packed, {"ETag": etag, "Vary": "Accept-Encoding", "Cache-Control": "private, no-cache"}
    )


@router.get(
    "/{session_id}/nodes/{node_id:path}",
    response_model=NodeDetail,
    summary="One node of the main graph in full (id URL-encoded)",
)
def get_node(session_id: str, node_id: str, handle: OpenSession) -> dict[str, Any]:
    return node_detail(handle, node_id)


@router.get(
    "/{session_id}/shapes", response_model=ShapeReport, summary="Static-shape report: what is not static, and why"
)
def get_shapes(session_id: str, handle: OpenSession) -> dict[str, Any]:
    return shapes(handle)
