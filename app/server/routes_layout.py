"""Routes the browser editor needs besides the REST core: layout, a weight histogram, the operator list.

The layout is computed from the service's own graph view at the session's current version, so the
picture and the sidebar always describe the same model. Layouts are cached per session, version and
graph scope; each session keeps a memory of where its boxes were, so after a local edit the next
layout moves nothing that did not change (see app/graph/layout.py).
"""
from __future__ import annotations

import gzip
import json
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import numpy as np
import onnx
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from ..graph.io import read_tensor
from ..graph.layout import LayoutMemory, layout_graph
from .errors import ApiError
from .graph_view import graph_view_gzip, gzipped_json_response

router = APIRouter(prefix="/api/sessions", tags=["editor"])

_CACHE_SIZE = 16
_MEMORY_SESSIONS = 32
HISTOGRAM_BINS = 40
HISTOGRAM_SAMPLE = 1 << 20

_lock = threading.Lock()
_layouts: OrderedDict[tuple[str, int, str], bytes] = OrderedDict()
_memories: OrderedDict[tuple[str, str], LayoutMemory] = OrderedDict()


def _scope_graph(view: dict[str, Any], scope: list[str]) -> dict[str, Any]:
    """The graph of the view at a scope path [owner id, attribute(:index), owner id, attribute, ...]."""
    graph = view["graph"]
    for i in range(0, len(scope), 2):
        owner = next((n for n in graph["nodes"] if n["id"] == scope[i]), None)
        attr, _, gi = scope[i + 1].partition(":")
        body = None
        if owner is not None:
            body = next((s["graph"] for s in owner.get("subgraphs", ())
                         if s["attribute"] == attr and s["index"] == (int(gi) if gi.isdigit() else 0)), None)
        if body is None:
            raise ApiError(404, "unknown_scope", f"no body '{scope[i + 1]}' of node '{scope[i]}' in this graph",
                           {"scope": scope[: i + 2]})
        graph = body
    return graph


def _parse_scope(text: str) -> list[str]:
    if not text:
        return []
    try:
        scope = json.loads(text)
    except json.JSONDecodeError:
        scope = None
    if not isinstance(scope, list) or len(scope) % 2 or not all(isinstance(p, str) for p in scope):
        raise ApiError(422, "bad_scope", "scope is a JSON list [node id, attribute, node id, attribute, ...]")
    return scope


def _memory(session_id: str, scope_key: str) -> LayoutMemory:
    with _lock:
        memory = _memories.get((session_id, scope_key))
        if memory is None:
            memory = _memories[(session_id, scope_key)] = LayoutMemory()
        _memories.move_to_end((session_id, scope_key))
        while len(_memories) > _MEMORY_SESSIONS:
            _memories.popitem(last=False)
        return memory


def compute_layout(request: Request, session_id: str, scope_text: str, full: bool) -> bytes:
    scope = _parse_scope(scope_text)
    scope_key = json.dumps(scope)
    with request.app.state.store.open(session_id) as handle:
        version = handle.doc.version
        key = (session_id, version, scope_key)
        if not full:
            with _lock:
                cached = _layouts.get(key)
            if cached is not None:  # before unpacking the view: a cache hit needs only the version
                return cached
        packed = graph_view_gzip(session_id, handle.doc)
    graph = _scope_graph(json.loads(gzip.decompress(packed)), scope)
    memory = _memory(session_id, scope_key)
    if full:
        memory = LayoutMemory()
        with _lock:
            _memories[(session_id, scope_key)] = memory
    drawing = layout_graph(graph, memory)
    drawing["version"] = version
    drawing["scope"] = scope
    packed = gzip.compress(json.dumps(drawing, separators=(",", ":")).encode(), compresslevel=5)
    with _lock:
        _layouts[key] = packed
        while len(_layouts) > _CACHE_SIZE:
            _layouts.popitem(last=False)
    return packed


@router.get("/{session_id}/layout", summary="Positions of boxes and edge routes for the editor's view")
async def get_layout(session_id: str, request: Request, scope: str = Query(default="", description=(
        "JSON list [node id, attribute, ...] of an If/Loop/Scan body; empty for the main graph")),
        full: bool = Query(default=False, description="lay out from scratch, forgetting earlier positions")
        ) -> Response:
    packed = await run_in_threadpool(compute_layout, request, session_id, scope, full)
    return gzipped_json_response(request, packed, {"Cache-Control": "private, no-cache", "Vary": "Accept-Encoding"})


def _histogram(request: Request, session_id: str, name: str) -> dict[str, Any]:
    with request.app.state.store.open(session_id) as handle:
        scope = handle.doc.main
        pos = scope.find_item("initializer", name)
        if pos is None:
            raise ApiError(404, "unknown_tensor", f"no initializer named '{name}'", {"tensor": name})
        tensor = scope.graph.initializer[pos]
        base_dir = handle.doc.base_dir
        version = handle.doc.version
        try:
            values = read_tensor(tensor, base_dir)
        except Exception as err:  # strings, packed types, unreadable external data: no histogram
            raise ApiError(422, "no_histogram", f"no histogram for '{name}': {err}", {"tensor": name}) from None
    if values.dtype.kind not in "fiub" or values.size == 0:
        raise ApiError(422, "no_histogram", f"'{name}' holds no numbers ({values.dtype})", {"tensor": name})
    flat = values.reshape(-1)
    sampled = flat.size > HISTOGRAM_SAMPLE
    if sampled:
        flat = flat[:: flat.size // HISTOGRAM_SAMPLE + 1]
    data = flat.astype(np.float64)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return {"version": version, "counts": [], "edges": [], "sampled": sampled}
    counts, edges = np.histogram(data, bins=HISTOGRAM_BINS)
    return {"version": version, "counts": counts.tolist(), "edges": edges.tolist(), "sampled": sampled}


@router.get("/{session_id}/histogram/{name:path}", summary="Histogram of an initializer's values (40 bins)")
async def get_histogram(session_id: str, name: str, request: Request) -> dict[str, Any]:
    return await run_in_threadpool(_histogram, request, session_id, name)


def _operators(request: Request, session_id: str) -> dict[str, Any]:
    with request.app.state.store.open(session_id) as handle:
        opsets = {o.domain or "": o.version for o in handle.doc.model.opset_import}
    return {"opsets": opsets, "operators": _operator_list(tuple(sorted(opsets.items())))}


@lru_cache(maxsize=32)
def _operator_list(opset_items: tuple[tuple[str, int], ...]) -> list[dict[str, Any]]:
    """The operators of these opsets, newest schema of each: the same for every model with these opsets."""
    opsets = dict(opset_items)
    found: dict[tuple[str, str], Any] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        domain = "" if schema.domain == "ai.onnx" else schema.domain
        version = opsets.get(domain)
        if version is None or schema.since_version > version or schema.deprecated:
            continue
        key = (domain, schema.name)
        if key not in found or found[key].since_version < schema.since_version:
            found[key] = schema
    ops = []
    for (domain, name), schema in sorted(found.items(), key=lambda kv: (kv[0][0] != "", kv[0])):
        ops.append({
            "op_type": name, "domain": domain, "since_version": schema.since_version,
            "inputs": [{"name": i.name, "optional": i.option == onnx.defs.OpSchema.FormalParameterOption.Optional,
                        "variadic": i.option == onnx.defs.OpSchema.FormalParameterOption.Variadic}
                       for i in schema.inputs],
            "outputs": [{"name": o.name} for o in schema.outputs],
            "min_output": schema.min_output,
            "attributes": [{"name": a.name, "type": onnx.AttributeProto.AttributeType.Name(int(a.type)).lower(),
                            "required": a.required} for a in schema.attributes.values()],
        })
    return ops


@router.get("/{session_id}/operators", summary="Operators of the model's opsets, with inputs and typed attributes")
async def get_operators(session_id: str, request: Request) -> dict[str, Any]:
    return await run_in_threadpool(_operators, request, session_id)
