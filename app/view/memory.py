"""What a session remembers of its last drawings, so that a local edit keeps the picture still."""

from __future__ import annotations

from collections.abc import Container
from typing import Any


class LayoutMemory:
    """Where each box and edge of a graph was last drawn, so a local edit keeps the picture still; and
    the nodes of the last drawing, so a box whose id a rename changed is known again (recognise)."""

    def __init__(self) -> None:
        self.boxes: dict[str, tuple[float, float]] = {}
        self.routes: dict[tuple[str, str, str], list[float]] = {}
        self.nodes: list[tuple[str, str, list[str]]] = []  # (id, op_type, outputs) in graph order

    def remember_nodes(self, nodes: list[dict[str, Any]]) -> None:
        """What the next drawing's recognise compares with (the outputs lists are the view's, never
        changed in place)."""
        self.nodes = [(n["id"], n["op_type"], n["outputs"]) for n in nodes]

    def recognise(
        self, nodes: list[dict[str, Any]], live: Container[str], unknown: set[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Give each box of the `unknown` ids, among the graph's `nodes` (`live`: the ids the graph has),
        the place it had in the last drawing if it is a node whose id changed since. Returns the old id
        by new id of the boxes recognised, and the old name by new name of their outputs.

        An id is made of names (the node's own when unique, else its first output's), so a rename changes
        ids without moving anything, and the box must not jump. The memory is all there is to go by: a
        new layout (GET /layout) has no graph delta, and both paths must draw the same. The box is the
        node of the last drawing whose id is gone from the graph and which
          - produced one of its outputs: rename_node keeps every output, and so does a node whose id
            flipped between its name and '@output' because a namesake came or went; else
          - had its op_type at its position in the node list: rename_tensor changes an unnamed node's
            '@output' id, and no rename moves a node in the list.
        Content is no guide (many nodes are alike), and an id still in the graph is never taken, so a
        recognised box lands only where a box that is gone was. Its edges keep their routes through
        the old ids and tensor names (route)."""
        was: dict[str, str] = {}
        tensor_was: dict[str, str] = {}
        if not self.nodes:
            return was, tensor_was
        known = self.boxes
        new = [(i, node) for i, node in enumerate(nodes) if node["id"] in unknown]
        if not new:
            return was, tensor_was
        gone = [(i, old) for i, old in enumerate(self.nodes) if old[0] not in live and old[0] in known]
        by_output = {o: old for _, old in gone for o in old[2] if o}
        by_place = {(i, old[1]): old for i, old in gone}
        taken: set[str] = set()
        for i, node in new:
            old = next((by_output[o] for o in node["outputs"] if o in by_output), by_place.get((i, node["op_type"])))
            if old is None or old[0] in taken:
                continue
            taken.add(old[0])
            was[node["id"]] = old[0]
            known[node["id"]] = known[old[0]]
            # by position; the new node may have more or fewer outputs than the one it replaces
            tensor_was.update((o, p) for o, p in zip(node["outputs"], old[2], strict=False) if o and p and o != p)
        return was, tensor_was

    def route(
        self,
        name: str,
        source: str,
        target: str,
        start: list[float],
        end: list[float],
        was: dict[str, str],
        tensor_was: dict[str, str],
    ) -> list[float] | None:
        """The remembered route of tensor `name`'s edge from box `source` to box `target` if it still
        runs from `start` to `end` (its ends did not move), under the old names of a renamed end."""
        old = self.routes.get((name, source, target))
        if old is None and was:  # an end was renamed: its route under the old names
            old = self.routes.get((tensor_was.get(name, name), was.get(source, source), was.get(target, target)))
        if old is not None and old[:2] == start and old[-2:] == end:
            return old
        return None
