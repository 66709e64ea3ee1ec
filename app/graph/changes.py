"""What an edit changed, as node ids and graph lists, so that a caller need not compare whole graphs."""

from __future__ import annotations

from typing import Any

from onnx import NodeProto

from .document import ModelDocument
from .history import ItemChange, Transaction


def describe_changes(doc: ModelDocument, transactions: list[Transaction], undo: bool = False) -> dict[str, Any]:
    """Node ids removed/added/changed in the main graph (as the model is now), and which lists changed.

    Ids of removed nodes are those they had before; a node both removed and re-added (a move)
    is reported as changed. Changes inside subgraph bodies report the owning main-graph node.
    """
    removed: list[str] = []
    added: list[NodeProto] = []
    lists: set[str] = set()
    body_owners: set[int] = set()
    model_level = False
    for tx in transactions:
        steps = [c.inverse() for c in reversed(tx.changes)] if undo else tx.changes
        for change in steps:
            if not isinstance(change, ItemChange):
                model_level = True
                continue
            if change.path:
                body_owners.add(change.path[0][0])
                continue
            if change.field != "node":
                lists.add(change.field)
                continue
            if change.old is not None:
                removed.append(_old_id(change.old))
            if change.new is not None:
                added.append(change.new)
    scope = doc.main
    now = {scope.node_id(n) for n in _current(doc, added)}
    for pos in body_owners:
        if pos < len(scope.graph.node):
            now.add(scope.node_id(scope.graph.node[pos]))
    gone = [r for r in dict.fromkeys(removed) if r not in now]
    return {
        "nodes_removed": gone,
        "nodes_upserted": sorted(now),
        "lists_changed": sorted(lists),
        "model_changed": model_level,
    }


def _old_id(node: NodeProto) -> str:
    """Best-effort id of a node that is gone: its name, else its first output."""
    if node.name:
        return node.name
    first = next((o for o in node.output if o), "")
    return "@" + first


def _current(doc: ModelDocument, nodes: list[NodeProto]) -> list[NodeProto]:
    """The live graph nodes equal to the given copies (copies are what changes hold)."""
    scope = doc.main
    found = []
    for copy in nodes:
        first = next((o for o in copy.output if o), None)
        live = scope.index.producer.get(first) if first else None
        if live is not None and live == copy:
            found.append(live)
    return found
