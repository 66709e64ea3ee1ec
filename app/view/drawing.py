"""The drawing of one graph of the view: boxes with positions, edges with routes, broadcast stubs.

The input is the graph part of the service's graph view (nodes, tensors, initializers, inputs,
outputs), so what is drawn is exactly what the server holds. Box content comes from boxes.py, the
positions from placement.py; with a LayoutMemory (memory.py) of an earlier drawing of the same graph,
known boxes stay where they were. layout.py moves a drawing along the graph's versions.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .boxes import edge, io_box, is_folded, name_label, op_box
from .memory import LayoutMemory
from .placement import broadcast_tensors, layers_of, place, place_beside

Edge = tuple[str, str, str, int]  # tensor, source box id, target box id, input slot
Unresolved = tuple[str, str, int]  # tensor, reader box id, input slot: a read with no source box


class Drawing:
    """The drawing of one graph of the view, held by box id and by tensor. Edges are kept per tensor in
    drawing order; a client holding the drawing mirrors them with the same rule (replace in place,
    append, delete)."""

    def __init__(self, graph: dict[str, Any], memory: LayoutMemory | None = None, max_new: int = 16) -> None:
        # Nothing here makes reference cycles; the cyclic collector would only rescan the many small
        # dicts and lists being built (measured: a third of the time at 20,000 nodes).
        with no_gc():
            self._build(graph, memory, max_new)

    def _build(self, graph: dict[str, Any], memory: LayoutMemory | None, max_new: int) -> None:
        self.graph, self.memory, self.max_new = graph, memory, max_new
        self.was: dict[str, str] = {}  # old id by new id of boxes the memory recognised as renamed
        self.tensor_was: dict[str, str] = {}  # old name by new name of their outputs
        self._structure_key: tuple[Any, ...] | None = None
        self.nodes = {n["id"]: n for n in graph["nodes"]}
        outputs = set(graph["outputs"])
        self.folded = {n["id"] for n in graph["nodes"] if is_folded(n, graph["tensors"], outputs)}
        self.boxes: dict[str, dict[str, Any]] = {}
        for box in self._io_boxes():
            self.boxes[box["id"]] = box
        for node in graph["nodes"]:
            if node["id"] not in self.folded:
                self.boxes[node["id"]] = op_box(node, graph, self.folded)
        self.order = self._order()
        # per tensor: its edges and its reads with no source box
        self.tensor_edges: dict[str, tuple[list[Edge], list[Unresolved]]] = {}
        for name, t in graph["tensors"].items():
            found = self._edges_of(name, t)
            if found[0] or found[1]:
                self.tensor_edges[name] = found
        self._structure()
        index = {box_id: i for i, box_id in enumerate(self.order)}
        unknown = self._unknown()
        self.incremental = unknown is not None
        if unknown is not None and memory is not None:
            for box_id in self.order:
                if box_id in memory.boxes:
                    self._put(self.boxes[box_id], memory.boxes[box_id])
            self._place_new(unknown)
            routes = [self._route(t, s, d) for t, s, d, _ in self.kept]
        else:
            boxes = [self.boxes[i] for i in self.order]
            positions, routes = place(boxes, self.layers, [(index[s], index[d]) for _, s, d, _ in self.kept])
            for box, (x, y) in zip(boxes, positions, strict=True):
                box["x"], box["y"] = round(x, 1), round(y, 1)
        tensors = graph["tensors"]
        self.edges: dict[str, list[dict[str, Any]]] = {}
        for (name, source, target, slot), route in zip(self.kept, routes, strict=True):
            self.edges.setdefault(name, []).append(edge(name, source, target, slot, route, tensors))
        self._measure()
        if memory is not None:
            for box in self.boxes.values():
                memory.boxes[box["id"]] = (box["x"], box["y"])
            for edges in self.edges.values():
                for e in edges:
                    memory.routes[(e["t"], e["from"], e["to"])] = e["pts"]
            memory.remember_nodes(graph["nodes"])

    def drawing(self) -> dict[str, Any]:
        """Boxes in order, edges and stubs naming boxes by position: what the editor draws."""
        index = {box_id: i for i, box_id in enumerate(self.order)}
        edges = [
            {**e, "from": index[e["from"]], "to": index[e["to"]]}
            for tensor_edges in self.edges.values()
            for e in tensor_edges
        ]
        return {
            "nodes": [self.boxes[i] for i in self.order],
            "edges": edges,
            "stubs": [{**stub, "to": index[stub["to"]]} for stub in self.stubs],
            "broadcast": sorted(self.broadcast),
            "width": self.width,
            "height": self.height,
            "incremental": self.incremental,
        }

    # -- the parts -------------------------------------------------------------------------------
    def _io_boxes(self) -> list[dict[str, Any]]:
        """The boxes of the graph's inputs and outputs (remembered by id: the next graph may have others)."""
        tensors = self.graph["tensors"]
        boxes = [io_box(name, "input", tensors) for name in self.graph["inputs"]] + [
            io_box(name, "output", tensors) for name in self.graph["outputs"]
        ]
        self._io_ids = [box["id"] for box in boxes]
        return boxes

    def _tensors_at(self, box_id: str) -> list[str]:
        """The tensors whose edges may end at this box."""
        box = self.boxes[box_id]
        if box["kind"] != "op":
            return [box["tensor"]]
        node = self.nodes[box_id]
        if node.get("subgraphs"):  # its bodies read outer tensors that are not among its inputs
            return [name for name, edges in self.edges.items() if any(box_id in (e["from"], e["to"]) for e in edges)]
        return [t for t in node["inputs"] + node["outputs"] if t]

    def _order(self) -> list[str]:
        """Box ids in drawing order: graph inputs, nodes in graph order, graph outputs."""
        return (
            ["in:" + n for n in self.graph["inputs"]]
            + [n["id"] for n in self.graph["nodes"] if n["id"] not in self.folded]
            + ["out:" + n for n in self.graph["outputs"]]
        )

    def _edges_of(self, name: str, t: dict[str, Any]) -> tuple[list[Edge], list[Unresolved]]:
        """One edge per (tensor, reader) from the producer box (or the input box) to the reader box;
        reads with no box producing them (outer scope) separately."""
        if name in self.graph.get("initializers", {}) and not t.get("is_input"):
            return [], []
        producer = t.get("producer")
        if producer in self.folded:
            return [], []
        boxes = self.boxes
        source = (
            (producer if producer in boxes else None)
            if producer is not None
            else ("in:" + name if "in:" + name in boxes else None)
        )
        edges: list[Edge] = []
        unresolved: list[Unresolved] = []
        for reader in dict.fromkeys(t.get("consumers", ())):
            if reader not in boxes:
                continue
            inputs = self.nodes[reader]["inputs"]
            slot = inputs.index(name) if name in inputs else len(inputs)
            if source is None:
                unresolved.append((name, reader, slot))
            else:
                edges.append((name, source, reader, slot))
        if source is not None and "out:" + name in boxes:
            edges.append((name, source, "out:" + name, 0))
        return edges, unresolved

    def _structure(self) -> None:
        """Layers, broadcast tensors, their stubs and the edges kept for the layout. Layers and broadcast
        tensors are worked out again only when the edges between box positions changed."""
        index = {box_id: i for i, box_id in enumerate(self.order)}
        edges = [e for found, _ in self.tensor_edges.values() for e in found]
        links = [(index[s], index[d]) for _, s, d, _ in edges]
        key = (len(self.order), links, [e[0] for e in edges])
        if key != self._structure_key:
            layers = layers_of(len(self.order), links)
            broadcast = broadcast_tensors([(name, index[d]) for name, _, d, _ in edges], layers)
            if broadcast:
                layers = layers_of(
                    len(self.order), [link for e, link in zip(edges, links, strict=True) if e[0] not in broadcast]
                )
            self._structure_key, self.layers, self.broadcast = key, layers, broadcast
        broadcast = self.broadcast
        stubs: list[dict[str, Any]] = [
            {"t": name, "to": d, "slot": slot, "in": True} for name, _, d, slot in edges if name in broadcast
        ]
        stubs += [
            {"t": name, "to": d, "slot": slot, "in": True}
            for _, unresolved in self.tensor_edges.values()
            for name, d, slot in unresolved
        ]
        tensors = self.graph["tensors"]
        for name in sorted(broadcast):
            producer = tensors[name].get("producer")
            source = (
                (producer if producer in index else None)
                if producer is not None
                else ("in:" + name if "in:" + name in index else None)
            )
            if source is not None:
                stubs.append({"t": name, "to": source, "slot": 0, "in": False})
        for stub in stubs:
            stub["label"] = name_label(stub["t"])
        self.kept = [e for e in edges if e[0] not in broadcast] if broadcast else edges
        self.stubs = stubs

    def _unknown(self) -> list[int] | None:
        """Positions of boxes the memory never placed, renamed ones aside, when few enough to place them
        incrementally."""
        if self.memory is None or not self.memory.boxes:
            return None
        known = self.memory.boxes
        unknown = [i for i, box_id in enumerate(self.order) if box_id not in known]
        if unknown:
            self.was, self.tensor_was = self.memory.recognise(
                self.graph["nodes"], self.nodes, {self.order[i] for i in unknown}
            )
            unknown = [i for i in unknown if self.order[i] not in known]
        if len(unknown) <= self.max_new and len(unknown) <= max(4, len(self.order) // 4):
            return unknown
        return None

    def _place_new(self, unknown: list[int]) -> None:
        """Put boxes the memory does not know beside a placed neighbour, layer by layer."""
        if not unknown:
            return
        index = {box_id: i for i, box_id in enumerate(self.order)}
        place_beside(
            [self.boxes[i] for i in self.order],
            self.layers,
            [(index[s], index[d]) for _, s, d, _ in self.kept],
            unknown,
        )

    def _route(self, name: str, source: str, target: str) -> list[float]:
        """The remembered route of an edge when its ends did not move, else a straight line."""
        src, dst = self.boxes[source], self.boxes[target]
        start = [src["x"], round(src["y"] + src["h"], 1)]
        end = [dst["x"], dst["y"]]
        old = (
            None
            if self.memory is None
            else self.memory.route(name, source, target, start, end, self.was, self.tensor_was)
        )
        return start + end if old is None else old

    @staticmethod
    def _put(box: dict[str, Any], position: tuple[float, float]) -> None:
        box["x"], box["y"] = position

    def _measure(self) -> None:
        boxes = self.boxes.values()
        self.width = round(max((b["x"] + b["w"] / 2 for b in boxes), default=0.0), 1)
        self.height = round(max((b["y"] + b["h"] for b in boxes), default=0.0), 1)


@contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector off while building (see Drawing.__init__)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
