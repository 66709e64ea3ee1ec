"""The editor's layout of a session's graph, and what each process holds of earlier layouts.

The layout is computed from the service's own graph view at the session's current version, so the
picture and the sidebar always describe the same model. Each session keeps a memory of where its
boxes were, so after a local edit the next layout moves nothing that did not change (see
app/view/layout.py). The last layout of a few scopes is held with the view it was drawn from: the same
version is answered without work, and GET /layout/delta?since=N moves the main graph's layout along the
graph delta (app/view/graph_delta.py) and answers only the boxes and edges that changed.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...view.graph_delta import apply_graph_delta, graph_delta_gzip
from ...view.graph_view import graph_view_gzip
from ...view.layout import Layout, LayoutMemory
from ..errors import Invalid, NotFound
from ..session_store import SessionStore

_STATES = 4  # layouts held with the view they drew (20,000 nodes: about 80 MB each, measured)
_MEMORY_SESSIONS = 32
LAYOUT_DELTA = "onnx-workbench/layout-delta"

_lock = threading.Lock()
_states: OrderedDict[tuple[str, str], _Drawn] = OrderedDict()
_memories: OrderedDict[tuple[str, str], LayoutMemory] = OrderedDict()


@dataclass
class _Drawn:
    """One graph scope of a session as last drawn: the view it was drawn from, the layout, and its
    answers packed. A layout delta moves it to the next version the client asks about."""

    version: int
    scope: list[str]
    view: dict[str, Any]
    layout: Layout
    lock: threading.Lock = field(default_factory=threading.Lock)
    packed: bytes | None = None
    delta: tuple[int, bytes] | None = None  # (since, gzipped layout delta) that led to this version

    def pack(self) -> bytes:
        if self.packed is None:
            drawing = self.layout.drawing()
            drawing["version"] = self.version
            drawing["scope"] = self.scope
            self.packed = gzip.compress(orjson.dumps(drawing), compresslevel=5)
        return self.packed


def _scope_graph(view: dict[str, Any], scope: list[str]) -> dict[str, Any]:
    """The graph of the view at a scope path [owner id, attribute(:index), owner id, attribute, ...]."""
    graph = view["graph"]
    for i in range(0, len(scope), 2):
        owner = next((n for n in graph["nodes"] if n["id"] == scope[i]), None)
        attr, _, gi = scope[i + 1].partition(":")
        body = None
        if owner is not None:
            body = next(
                (
                    s["graph"]
                    for s in owner.get("subgraphs", ())
                    if s["attribute"] == attr and s["index"] == (int(gi) if gi.isdigit() else 0)
                ),
                None,
            )
        if body is None:
            raise NotFound(
                "unknown_scope",
                f"no body '{scope[i + 1]}' of node '{scope[i]}' in this graph",
                {"scope": scope[: i + 2]},
            )
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
        raise Invalid("bad_scope", "scope is a JSON list [node id, attribute, node id, attribute, ...]")
    return scope


def _memory(key: tuple[str, str], fresh: bool) -> LayoutMemory:
    with _lock:
        memory = _memories.get(key)
        if memory is None or fresh:
            memory = _memories[key] = LayoutMemory()
        _memories.move_to_end(key)
        while len(_memories) > _MEMORY_SESSIONS:
            _memories.popitem(last=False)
        return memory


def _held(key: tuple[str, str]) -> _Drawn | None:
    with _lock:
        drawn = _states.get(key)
        if drawn is not None:
            _states.move_to_end(key)
        return drawn


def _hold(key: tuple[str, str], drawn: _Drawn | None) -> None:
    with _lock:
        if drawn is None:
            _states.pop(key, None)
            return
        held = _states.get(key)
        if held is None or held.version <= drawn.version:
            _states[key] = drawn
            _states.move_to_end(key)
        while len(_states) > _STATES:
            _states.popitem(last=False)


def compute_layout(store: SessionStore, session_id: str, scope_text: str, full: bool) -> bytes:
    """The gzipped drawing of a scope at the session's version, laid out again only when it changed."""
    scope = _parse_scope(scope_text)
    key = (session_id, json.dumps(scope))
    with store.open(session_id) as handle:
        version = handle.doc.version
        drawn = _held(key)
        if drawn is not None and not full:
            with drawn.lock:
                if drawn.version == version:  # before unpacking the view: a hit needs only the version
                    return drawn.pack()
        packed = graph_view_gzip(session_id, handle.doc)
    view = orjson.loads(gzip.decompress(packed))
    layout = Layout(_scope_graph(view, scope), _memory(key, fresh=full))
    drawn = _Drawn(version, scope, view, layout)
    _hold(key, drawn)
    return drawn.pack()


def compute_layout_delta(store: SessionStore, session_id: str, since: int) -> bytes:
    """The main graph's drawing from `since` to the session's version, following the graph delta; or
    {"full": true, "reason"} when the layout of `since` is not held here or the edit needs a new layout."""
    key = (session_id, "[]")
    with store.open(session_id) as handle:
        version = handle.doc.version
        drawn = _held(key)
        graph_delta = graph_delta_gzip(session_id, handle.doc, since) if drawn is not None else None

    def fallback(reason: str) -> bytes:
        return gzip.compress(
            orjson.dumps({"format": LAYOUT_DELTA, "since": since, "version": version, "full": True, "reason": reason})
        )

    if drawn is None or graph_delta is None:
        return fallback("no_layout")
    with drawn.lock:
        if drawn.delta is not None and drawn.delta[0] == since and drawn.version == version:
            return drawn.delta[1]
        if drawn.version != since:
            return fallback("no_layout")
        change = orjson.loads(gzip.decompress(graph_delta))
        if change["full"]:
            return fallback(change["reason"])
        try:
            apply_graph_delta(drawn.view, change)
            update = drawn.layout.update(drawn.view["graph"], change["graph"])
        except BaseException:
            _hold(key, None)  # half updated: the next layout starts again from the view
            raise
        if update is None:
            _hold(key, None)
            return fallback("relayout")
        drawn.version, drawn.packed = version, None
        answer = {"format": LAYOUT_DELTA, "since": since, "version": version, "full": False, **update}
        drawn.delta = (since, gzip.compress(orjson.dumps(answer), compresslevel=5))
        return drawn.delta[1]
