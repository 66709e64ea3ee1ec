"""Server-side layout of a graph view, ready to draw, and moved along the graph's versions.

layout_graph lays out one graph of the view (drawing.py); a Layout kept between requests redraws the
next version of the graph by redoing only what a graph delta (graph_delta.py) names, so that after a
local edit the page receives only the boxes and edges that changed.
"""

from __future__ import annotations

from typing import Any

from .boxes import edge, is_folded, op_box
from .drawing import Drawing, Edge, no_gc
from .memory import LayoutMemory

__all__ = ["Layout", "LayoutMemory", "layout_graph"]  # what the server and the tests take from here


def layout_graph(graph: dict[str, Any], memory: LayoutMemory | None = None, max_new: int = 16) -> dict[str, Any]:
    """Boxes with positions, edges with routes, and broadcast stubs for one graph of the view.

    With a memory of an earlier layout of the same graph, and at most `max_new` boxes it has never
    placed, the layout is incremental: known boxes stay where they were, new ones go beside their
    neighbours ("incremental": true in the answer). Otherwise the whole graph is laid out.
    """
    return Layout(graph, memory, max_new).drawing()


class Layout(Drawing):
    """A drawing that follows the graph's versions.

    update() gives what layout_graph would give for the new graph with the same memory, up to the order
    of edges and stubs: tensors new to the drawing come last.
    """

    def update(self, graph: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any] | None:
        """Redraw for `graph`, the view's graph after the graph delta's part `delta` was applied to the
        graph this layout drew. Returns what changed in the drawing, naming boxes by id:
            {"boxes": {"removed": [id], "upserted": [box]}, "edges": [[tensor, [edge]], ...],
             "stubs": [...], "broadcast", "width", "height", "incremental": true}
        where each listed tensor's edges replace its earlier ones (none: it has no edges any more).
        None when more boxes are new than an incremental layout places: lay out again instead."""
        if self.memory is None:
            raise ValueError("only a layout with a memory can follow the graph's versions")
        with no_gc():
            return self._update(graph, delta)

    def _update(self, graph: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any] | None:
        assert self.memory is not None
        self.graph = graph
        self.was, self.tensor_was = {}, {}
        upserted = self._take_nodes(delta["nodes"])
        changed_tensors = set(delta["tensors"]["removed"]) | set(delta["tensors"]["upserted"])
        weights = set(delta["initializers"]["removed"]) | set(delta["initializers"]["upserted"])
        refolded = self._refold(upserted, changed_tensors)
        changed_tensors.update(o for f in refolded if f in self.nodes for o in self.nodes[f]["outputs"] if o)
        before, fresh = self._rebuild_boxes(delta["nodes"]["removed"], upserted, refolded, changed_tensors | weights)
        if len(self.order) != len(self.boxes):
            return None  # one id for two boxes (a graph output listed twice): the full layout handles it
        was_broadcast = self._redo_edges(changed_tensors)
        unknown = self._unknown()
        if unknown is None:
            return None
        for box_id in fresh:
            box = self.boxes.get(box_id)
            if box is not None and box_id in self.memory.boxes:
                self._put(box, self.memory.boxes[box_id])
        self._place_new(unknown)
        moved = {
            box_id
            for box_id in fresh
            if box_id in self.boxes and _geometry(self.boxes[box_id]) != _geometry(before.get(box_id))
        }
        changed_edges = self._redraw(changed_tensors | (was_broadcast ^ self.broadcast), moved)
        self._measure()
        upserted_boxes = [self.boxes[i] for i in self.order if i in fresh and self.boxes[i] != before.get(i)]
        for box in upserted_boxes:
            self.memory.boxes[box["id"]] = (box["x"], box["y"])
        self.memory.remember_nodes(graph["nodes"])
        self.incremental = True
        removed = sorted(box_id for box_id, box in before.items() if box is not None and box_id not in self.boxes)
        return {
            "boxes": {"removed": removed, "upserted": upserted_boxes},
            "edges": changed_edges,
            "stubs": self.stubs,
            "broadcast": sorted(self.broadcast),
            "width": self.width,
            "height": self.height,
            "incremental": True,
        }

    def _take_nodes(self, change: dict[str, Any]) -> list[dict[str, Any]]:
        """Take the delta's node changes into the nodes by id; returns the upserted nodes."""
        for node_id in change["removed"]:
            self.nodes.pop(node_id, None)
        upserted = [u["node"] for u in change["upserted"]]
        for node in upserted:
            self.nodes[node["id"]] = node
        return upserted

    def _refold(self, upserted: list[dict[str, Any]], changed_tensors: set[str]) -> set[str]:
        """Which Constant nodes are rows of their reader now; returns those that changed either way."""
        tensors = self.graph["tensors"]
        outputs = set(self.graph["outputs"])
        candidates = {n["id"] for n in upserted} | {
            tensors[t]["producer"] for t in changed_tensors if t in tensors and tensors[t]["producer"] is not None
        }
        refolded: set[str] = set()
        self.folded = {f for f in self.folded if f in self.nodes}
        for node_id in candidates:
            node = self.nodes.get(node_id)
            folded = node is not None and is_folded(node, tensors, outputs)
            if folded != (node_id in self.folded):
                refolded.add(node_id)
                (self.folded.add if folded else self.folded.discard)(node_id)
        return refolded

    def _rebuild_boxes(
        self, removed: list[str], upserted: list[dict[str, Any]], refolded: set[str], touched: set[str]
    ) -> tuple[dict[str, dict[str, Any] | None], set[str]]:
        """Rebuild every op box whose node or weight rows may differ (its node upserted or refolded, or
        it reads a `touched` tensor or weight), and every input and output box; then the box order.
        Returns what each box touched here was (None: new) and the ids of the boxes built."""
        tensors = self.graph["tensors"]
        before: dict[str, dict[str, Any] | None] = {}

        def drop(box_id: str) -> None:
            box = self.boxes.pop(box_id, None)
            before.setdefault(box_id, box)

        for box_id in self._io_ids + removed:
            drop(box_id)
        rebuild = {n["id"] for n in upserted} | refolded
        for name in touched:
            rebuild.update(tensors[name]["consumers"] if name in tensors else ())
        for node_id in rebuild:
            drop(node_id)
            node = self.nodes.get(node_id)
            if node is not None and node_id not in self.folded:
                self.boxes[node_id] = op_box(node, self.graph, self.folded)
        fresh = set(rebuild)
        for box in self._io_boxes():
            before.setdefault(box["id"], None)
            self.boxes[box["id"]] = box
            fresh.add(box["id"])
        self.order = self._order()
        return before, fresh

    def _redo_edges(self, changed_tensors: set[str]) -> set[str]:
        """The edges of the tensors that changed, in place; the structure only when the edges say it
        changed. Returns the broadcast tensors before."""
        tensors = self.graph["tensors"]
        for name in sorted(changed_tensors):
            found = self._edges_of(name, tensors[name]) if name in tensors else ([], [])
            if found[0] or found[1]:
                self.tensor_edges[name] = found
            else:
                self.tensor_edges.pop(name, None)
        was_broadcast = self.broadcast
        self._structure()
        return was_broadcast

    def _redraw(self, redraw: set[str], moved: set[str]) -> list[list[Any]]:
        """Draw again the edges of these tensors and of the tensors at boxes that moved; returns
        [tensor, its edges] for each tensor whose edges changed (none: it has no edges any more)."""
        assert self.memory is not None
        tensors = self.graph["tensors"]
        redraw = set(redraw)
        for box_id in moved:
            redraw.update(self._tensors_at(box_id))
        kept: dict[str, list[Edge]] = {}
        for link in self.kept:
            if link[0] in redraw:
                kept.setdefault(link[0], []).append(link)
        changed_edges: list[list[Any]] = []
        for name in sorted(redraw):
            edges = [edge(name, s, d, slot, self._route(name, s, d), tensors) for _, s, d, slot in kept.get(name, ())]
            if edges:
                self.edges[name] = edges
            elif self.edges.pop(name, None) is None:
                continue
            changed_edges.append([name, edges])
            for e in edges:
                self.memory.routes[(name, e["from"], e["to"])] = e["pts"]
        return changed_edges


def _geometry(box: dict[str, Any] | None) -> tuple[float, ...] | None:
    return None if box is None else (box["x"], box["y"], box["w"], box["h"])
