"""Routes of the editor's layout: where the boxes and edges of a graph scope are, and how a drawing
moves from one version to the next (app/server/services/layout.py)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from ...view.graph_delta import MAX_VERSION
from ..deps import Store
from ..gzip_response import gzipped_json_response
from ..schemas.editor import Drawing, LayoutDelta
from ..services.layout import compute_layout, compute_layout_delta

router = APIRouter(prefix="/api/sessions", tags=["editor"])
NOT_CACHED = {"Cache-Control": "private, no-cache", "Vary": "Accept-Encoding"}


@router.get(
    "/{session_id}/layout", response_model=Drawing, summary="Positions of boxes and edge routes for the editor's view"
)
async def get_layout(
    session_id: str,
    request: Request,
    store: Store,
    scope: str = Query(
        default="",
        description=("JSON list [node id, attribute, ...] of an If/Loop/Scan body; empty for the main graph"),
    ),
    full: bool = Query(default=False, description="lay out from scratch, forgetting earlier positions"),
) -> Response:
    packed = await run_in_threadpool(compute_layout, store, session_id, scope, full)
    return gzipped_json_response(request, packed, NOT_CACHED)


@router.get(
    "/{session_id}/layout/delta",
    response_model=LayoutDelta,
    summary="What changed in the main graph's drawing since a version",
)
async def get_layout_delta(
    session_id: str,
    request: Request,
    store: Store,
    since: int = Query(ge=0, le=MAX_VERSION, description="the version of the drawing the client holds"),
) -> Response:
    packed = await run_in_threadpool(compute_layout_delta, store, session_id, since)
    return gzipped_json_response(request, packed, NOT_CACHED)
