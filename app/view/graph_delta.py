"""What changed in a session's graph view between two versions, so that the editor can redraw an edit
without reading the whole view again (20,000 nodes: about 1 MB gzipped and a second of work).

The delta is made from the document's journal of primitive changes (ModelDocument.steps_since), not by
comparing two views, so it costs what the edits touched; only an edit that changed shapes also costs
the shape inference that the full view of the new version needs as well. Its shape:

    {"format": "onnx-workbench/graph-delta", "since": S, "version": V, "full": false,
     "ir_version", "opset", "producer", "shape_inference",          (as in the full view)
     "graph": {"inputs": [...], "outputs": [...],                    (the whole lists)
               "nodes": {"removed": [id, ...], "upserted": [{"after": id | null, "node": {...}}, ...]},
               "tensors": {"removed": [name, ...], "upserted": {name: entry}},
               "initializers": {"removed": [name, ...], "upserted": {name: summary}}}}

Nodes, tensor entries and initializer summaries have exactly the full view's shape (graph_view.py).
To apply it (apply_graph_delta, and the editor's delta.js): remove the nodes whose id is removed or
upserted, then put each upserted node, in the order given, right after the node named by "after"
(null: first); delete the removed tensor entries and summaries and set the upserted ones; take the
lists and the model fields as given. The result equals the full view of version V. A removed id may
name no node of version S: such ids are ignored.

When no delta can be made the answer is {"format", "since", "version", "full": true, "reason"} and the
client reads the full view. Reasons: "unknown_version" (S is newer than the session), "too_old" (the
steps since S are no longer all known: more than JOURNAL_STEPS ago, or before the snapshot the server
restored the session from), "whole_graph_edit" (an extract, fold, cleanup, infer_shapes or opset
conversion, or its undo, lies between), "subgraph_changed" (an If/Loop/Scan body changed),
"positional_ids" (nodes without outputs, whose ids are positions, may have moved), "shapes_unknown"
(the inferred shapes of version S are no longer kept, or inference fails now) and "too_large" (more than
MAX_FRACTION of the graph's nodes and tensors, and more than MIN_ITEMS, changed).
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from typing import Any

import orjson
from onnx import NodeProto, TypeProto

from ..graph import ModelDocument
from ..graph.document import Scope, Step
from ..graph.edits import WHOLE_GRAPH_OPS
from ..graph.history import ItemChange
from ..graph.index import node_reads
from ..graph.shapes import resolution_at
from .graph_view import describe_tensor, main_initializer_summary, node_item, view_header

FORMAT = "onnx-workbench/graph-delta"
MAX_VERSION = 2**53 - 1  # the largest integer a browser holds exactly; versions count edits
MAX_FRACTION = 0.25
MODEL_FIELDS = ("version", "ir_version", "opset", "producer", "shape_inference")  # taken whole from the delta
MIN_ITEMS = 64  # a small graph's delta is small whatever fraction of it changed
_CACHE_SIZE = 16

_cache: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
_cache_lock = threading.Lock()


class _Fallback(Exception):
    """No delta can be made; the client reads the full view."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def graph_delta_gzip(session_id: str, doc: ModelDocument, since: int) -> bytes:
    """The gzipped JSON delta from `since` to the document's version, cached (both versions fix it)."""
    key = (session_id, since, doc.version)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    packed = gzip.compress(orjson.dumps(graph_delta(doc, since)), compresslevel=5)
    with _cache_lock:
        _cache[key] = packed
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return packed


def graph_delta(doc: ModelDocument, since: int) -> dict[str, Any]:
    try:
        fields, graph = _delta(doc, since)
    except _Fallback as fallback:
        return {"format": FORMAT, "since": since, "version": doc.version, "full": True, "reason": fallback.reason}
    return {"format": FORMAT, "since": since, "version": doc.version, "full": False, **fields, "graph": graph}


def _delta(doc: ModelDocument, since: int) -> tuple[dict[str, Any], dict[str, Any]]:
    steps, changes = _changes_since(doc, since)
    fields, inferred = view_header(doc)
    retyped: set[str] = set()
    if steps and steps[0].shape_revision_before != doc.shape_revision:
        before = resolution_at(doc, steps[0].shape_revision_before)
        if before is None or not fields["shape_inference"]["ok"]:
            raise _Fallback("shapes_unknown")
        retyped = _retyped(before.types, inferred)
    scope = doc.main
    nodes = _touched_nodes(scope, [c for c in changes if c.field == "node"])
    tensors = _touched_tensors(scope, nodes, changes, retyped)
    graph = scope.graph
    placed = sorted(((scope.index.position(n), n) for n in nodes.live.values()), key=lambda pn: pn[0])
    upserted = [
        {"after": scope.node_id(graph.node[pos - 1]) if pos else None, "node": node_item(doc, scope, pos, node)}
        for pos, node in placed
    ]
    removed = sorted(i for i in nodes.candidate_ids if _node_with_id(scope, i) is None)
    tensor_entries: dict[str, Any] = {}
    gone: list[str] = []
    for name in sorted(tensors):
        if _exists(scope, name):
            tensor_entries[name] = _tensor_entry(scope, name, inferred)
        else:
            gone.append(name)
    initializers = scope.names["initializer"]
    return fields, {
        "inputs": [v.name for v in graph.input if v.name not in initializers],
        "outputs": [v.name for v in graph.output],
        "nodes": {"removed": removed, "upserted": upserted},
        "tensors": {"removed": gone, "upserted": tensor_entries},
        "initializers": _initializer_change(doc, changes),
    }


def _changes_since(doc: ModelDocument, since: int) -> tuple[list[Step], list[ItemChange]]:
    """The journal's steps since `since`, and their changes of main-graph items."""
    steps = doc.steps_since(since)
    if steps is None:
        raise _Fallback("unknown_version" if since > doc.version else "too_old")
    changes: list[ItemChange] = []
    for step in steps:
        if step.tx.edit.get("op") in WHOLE_GRAPH_OPS:
            raise _Fallback("whole_graph_edit")
        for change in step.changes():
            if isinstance(change, ItemChange):  # model-level changes (opsets) travel in the model fields
                if change.path:
                    raise _Fallback("subgraph_changed")
                changes.append(change)
    return steps, changes


def _touched_tensors(scope: Scope, nodes: _TouchedNodes, changes: list[ItemChange], retyped: set[str]) -> set[str]:
    """The tensors whose entries may differ: read or written by a touched node, named by a change, or
    retyped; too many of them, and the client reads the full view instead."""
    tensors = set(retyped)
    for node in nodes.copies:
        tensors.update(node_reads(node))
        tensors.update(o for o in node.output if o)
    for node in nodes.live.values():
        tensors.update(scope.index.reads(node))
        tensors.update(o for o in node.output if o)
    tensors.update(_item_name(c) for c in changes if c.field != "node")
    tensors.discard("")
    size = len(scope.graph.node) + len(scope.index.producer) + len(scope.names["initializer"]) + len(scope.inputs)
    if len(nodes.live) + len(tensors) > max(MIN_ITEMS, MAX_FRACTION * size):
        raise _Fallback("too_large")
    return tensors


def _initializer_change(doc: ModelDocument, changes: list[ItemChange]) -> dict[str, Any]:
    """The summaries of the initializers the changes touched, and the names of those gone."""
    scope = doc.main
    summaries: dict[str, Any] = {}
    dropped: list[str] = []
    for name in sorted({_item_name(c) for c in changes if c.field == "initializer"}):
        pos = scope.find_item("initializer", name)
        if pos is None:
            dropped.append(name)
        else:
            summaries[name] = main_initializer_summary(doc, name, scope.graph.initializer[pos])
    return {"removed": dropped, "upserted": summaries}


class _TouchedNodes:
    """Nodes the changes touched: copies of what they were and are, the live nodes to send, and every
    id one of them may have had at the older version."""

    def __init__(self) -> None:
        self.copies: list[NodeProto] = []
        self.live: dict[int, NodeProto] = {}
        self.candidate_ids: set[str] = set()


def _touched_nodes(scope: Scope, changes: list[ItemChange]) -> _TouchedNodes:
    """A node's id is its name when unique, else '@' + its first output. So besides the nodes the
    changes made, every node sharing a name with a touched one is sent again: its id may have flipped
    between the two forms. Every other node kept its id, its content and its relative order."""
    found = _TouchedNodes()
    moved = False
    for change in changes:
        moved |= change.old is None or change.new is None
        for copy in (change.old, change.new):
            if copy is not None:
                if not _first_output(copy):
                    raise _Fallback("positional_ids")
                found.copies.append(copy)
        if change.new is not None:
            node = scope.index.producer.get(_first_output(change.new))
            if node is not None and node == change.new:
                found.live[id(node)] = node
    if moved and any(not any(node.output) for node in scope.graph.node):
        raise _Fallback("positional_ids")
    for name in {c.name for c in found.copies if c.name}:
        for node in scope.index.by_name.get(name, ()):
            found.live[id(node)] = node
    for node in found.copies + list(found.live.values()):
        if node.name:
            found.candidate_ids.add(node.name)
        found.candidate_ids.add("@" + _first_output(node))
    return found


def _node_with_id(scope: Scope, node_id: str) -> NodeProto | None:
    """The current node whose id this is, if any."""
    same = scope.index.by_name.get(node_id, ())
    if node_id and len(same) == 1:
        return same[0]
    if node_id.startswith("@"):
        node = scope.index.producer.get(node_id[1:])
        if node is not None and scope.node_id(node) == node_id:
            return node
    return None


def _first_output(node: NodeProto) -> str:
    return next((o for o in node.output if o), "")


def _item_name(change: ItemChange) -> str:
    item = change.new if change.new is not None else change.old
    return item.values.name if change.field == "sparse_initializer" else item.name


def _retyped(before: dict[str, TypeProto], now: dict[str, TypeProto]) -> set[str]:
    changed = {name for name, type_proto in now.items() if before.get(name) != type_proto}
    changed.update(name for name in before if name not in now)
    return changed


def _exists(scope: Scope, name: str) -> bool:
    """Whether the full view lists this tensor: read, produced, or a graph input, output or initializer."""
    return (
        name in scope.index.consumers
        or name in scope.index.producer
        or name in scope.inputs
        or name in scope.names["output"]
        or name in scope.names["initializer"]
    )


def _tensor_entry(scope: Scope, name: str, inferred: dict[str, TypeProto]) -> dict[str, Any]:
    index = scope.index
    producer = index.producer.get(name)
    readers = sorted(index.users(name), key=index.position)  # the view lists readers in graph order
    entry: dict[str, Any] = {
        "producer": scope.node_id(producer) if producer is not None else None,
        "consumers": [scope.node_id(n) for n in readers],
    }
    pos = scope.find_item("initializer", name)
    initializer = scope.graph.initializer[pos] if pos is not None else None
    describe_tensor(
        entry, name, _declared(scope, name) or inferred.get(name), initializer, scope.inputs, scope.names["output"]
    )
    return entry


def _declared(scope: Scope, name: str) -> TypeProto | None:
    """The type a graph list declares for the tensor; as in the full view, outputs over inputs over value_info."""
    for field_name in ("output", "input", "value_info"):
        pos = scope.find_item(field_name, name)
        if pos is not None:
            type_proto = getattr(scope.graph, field_name)[pos].type
            if type_proto.WhichOneof("value") is not None:
                return type_proto
    return None


def apply_graph_delta(view: dict[str, Any], delta: dict[str, Any]) -> None:
    """Bring a full view of version `since` to the delta's version, in place; a delta that does not fit
    the view changes nothing. The page's delta.js applies the same rule, in the same order, to its own
    copy of the view (the server's copy is the one its held layout follows)."""
    if delta["full"] or view["version"] != delta["since"]:
        raise ValueError("this delta does not apply to this view")
    graph, change = view["graph"], delta["graph"]
    upserted = change["nodes"]["upserted"]
    drop = set(change["nodes"]["removed"]) | {u["node"]["id"] for u in upserted}
    follower = {u["after"]: u["node"] for u in upserted}
    nodes: list[dict[str, Any]] = []

    def follow(after: str | None) -> None:
        while after in follower:
            node = follower.pop(after)
            nodes.append(node)
            after = node["id"]

    follow(None)
    for node in graph["nodes"]:
        if node["id"] not in drop:
            nodes.append(node)
            follow(node["id"])
    if follower:
        raise ValueError(f"upserted nodes follow nodes that are not in the view: {sorted(map(str, follower))[:5]}")
    for key in MODEL_FIELDS:
        view[key] = delta[key]
    graph["inputs"], graph["outputs"] = change["inputs"], change["outputs"]
    graph["nodes"] = nodes
    for table in ("tensors", "initializers"):
        for name in change[table]["removed"]:
            graph[table].pop(name, None)
        graph[table].update(change[table]["upserted"])
