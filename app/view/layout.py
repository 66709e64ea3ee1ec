"""Server-side layout of a graph view: boxes, positions and edge routes, ready to draw.

Why here and not in the browser: igraph's Sugiyama (C) lays out 20,000 nodes in about 0.1 s,
while the browser libraries take seconds or overflow their stack (see the rendering notes). The
input is the graph part of the service's graph view (nodes, tensors, initializers, inputs,
outputs), so what is drawn is exactly what the server holds.

What we do around igraph, as Netron does for the picture users expect:
- initializers, and Constant nodes read by a single node, are folded into the consumer's box as
  rows ("W <32x3x3x3>"), so weights do not become thousands of sources in the first layer;
- broadcast tensors (read by many nodes spread over many layers: attention masks, shared
  constants) are left out of the layout and drawn as labelled stubs at their readers;
- layers are ours (longest path, then sources pulled down next to their first reader);
- igraph orders each layer and gives x positions in units; we turn those into pixels that respect
  each box's width (least-squares placement under no-overlap constraints, per layer).
"""
from __future__ import annotations

import gc
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import onnx

# Box metrics (pixels); the browser draws with the same numbers.
CHAR_W = 6.6  # average advance of the 11px UI font
TITLE_H = 20
ROW_H = 14
PAD_X = 8
MIN_W = 56
MAX_W = 280
LAYER_GAP = 42  # room for the shape label on edges
H_GAP = 18
DUMMY_W = 10
UNIT = 72  # pixels per igraph x unit, before widths push boxes apart
MAX_ATTR_ROWS = 4
MAX_ROW_CHARS = 40
BROADCAST_MIN_READERS = 8
BROADCAST_MIN_SPAN = 12  # layers between its first and last reader

CATEGORIES: dict[str, tuple[str, ...]] = {
    "layer": ("Conv", "ConvTranspose", "ConvInteger", "Gemm", "MatMul", "MatMulInteger", "QLinearConv",
              "QLinearMatMul", "FusedConv", "FusedGemm", "FusedMatMul", "Attention", "MultiHeadAttention",
              "LSTM", "GRU", "RNN", "Einsum", "DeformConv", "EmbedLayerNormalization"),
    "activation": ("Relu", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu",
                   "Celu", "Gelu", "FastGelu", "BiasGelu", "QuickGelu", "Softplus", "Softsign", "Mish", "Swish",
                   "Softmax", "LogSoftmax", "Hardmax", "ThresholdedRelu", "Clip", "Erf"),
    "pool": ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "GlobalLpPool",
             "MaxRoiPool", "RoiAlign", "MaxUnpool"),
    "normalization": ("BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization",
                      "LpNormalization", "LRN", "MeanVarianceNormalization", "SkipLayerNormalization",
                      "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization", "RMSNormalization",
                      "Dropout"),
    "shape": ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Shape", "Size", "Concat", "Split",
              "Slice", "Gather", "GatherElements", "GatherND", "Scatter", "ScatterElements", "ScatterND", "Expand",
              "Tile", "Pad", "Resize", "Upsample", "DepthToSpace", "SpaceToDepth", "Identity", "Cast", "CastLike",
              "ConstantOfShape", "Range", "NonZero", "Where", "TopK", "Compress", "OneHot", "Trilu",
              "SplitToSequence", "SequenceAt", "SequenceConstruct", "ConcatFromSequence", "ReverseSequence"),
    "quantization": ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearAdd", "QLinearMul",
                     "QLinearSigmoid", "QLinearLeakyRelu", "QLinearConcat", "QLinearAveragePool",
                     "QLinearGlobalAveragePool", "QGemm", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
                     "MatMulNBits"),
    "control": ("If", "Loop", "Scan"),
    "constant": ("Constant",),
}
_CATEGORY_OF = {op: cat for cat, ops in CATEGORIES.items() for op in ops}
_STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")

# Attributes worth showing in the box first, Netron-style; the sidebar shows all of them.
_KEY_ATTRIBUTES = ("kernel_shape", "strides", "pads", "dilations", "group", "perm", "axis", "axes", "alpha",
                   "beta", "epsilon", "to", "mode", "transA", "transB", "keepdims", "split")


def category(op_type: str, domain: str) -> str:
    if domain not in _STANDARD_DOMAINS:
        return "custom"
    return _CATEGORY_OF.get(op_type, "custom" if domain == "com.microsoft" else "other")


@lru_cache(maxsize=4096)
def _input_names(op_type: str, domain: str) -> tuple[str, ...]:
    """Formal input names of an operator (W, B, ...), for the rows of folded weights."""
    try:
        schema = onnx.defs.get_schema(op_type, onnx.defs.onnx_opset_version(), domain)
    except onnx.defs.SchemaError:
        return ()
    return tuple(i.name for i in schema.inputs)


def shape_label(shape: list[Any] | None) -> str:
    if shape is None:
        return ""
    return "\u00d7".join("?" if d is None else str(d) for d in shape) if shape else "scalar"


def _short(value: Any) -> str:
    if isinstance(value, dict):
        if "graph" in value:
            return f"graph ({value.get('nodes', 0)} nodes)"
        return f"{value.get('dtype', '')}\u27e8{shape_label(value.get('shape'))}\u27e9"
    if isinstance(value, list):
        text = ", ".join(_short(v) for v in value[:8]) + (", \u2026" if len(value) > 8 else "")
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return text if len(text) <= MAX_ROW_CHARS else text[:MAX_ROW_CHARS - 1] + "\u2026"


def _box_width(title: str, rows: list[list[str]]) -> float:
    longest = max([len(title) + 2] + [len(k) + len(v) + 3 for k, v in rows])
    return float(min(MAX_W, max(MIN_W, longest * CHAR_W + 2 * PAD_X)))


class LayoutMemory:
    """Where each box and edge of a graph was last drawn, so a local edit keeps the picture still; and
    the nodes of the last drawing, so a box whose id a rename changed is known again (Layout._recognise)."""

    def __init__(self) -> None:
        self.boxes: dict[str, tuple[float, float]] = {}
        self.routes: dict[tuple[str, str, str], list[float]] = {}
        self.nodes: list[tuple[str, str, list[str]]] = []  # (id, op_type, outputs) in graph order


def layout_graph(graph: dict[str, Any], memory: LayoutMemory | None = None, max_new: int = 16) -> dict[str, Any]:
    """Boxes with positions, edges with routes, and broadcast stubs for one graph of the view.

    With a memory of an earlier layout of the same graph, and at most `max_new` boxes it has never
    placed, the layout is incremental: known boxes stay where they were, new ones go beside their
    neighbours ("incremental": true in the answer). Otherwise the whole graph is laid out.
    """
    return Layout(graph, memory, max_new).drawing()


class Layout:
    """The drawing of one graph of the view, held by box id and by tensor so that the next version of
    the graph is drawn by redoing only what a graph delta (app/server/graph_delta.py) names.

    update() gives what layout_graph would give for the new graph with the same memory, up to the order
    of edges and stubs: tensors new to the drawing come last. Edges are kept per tensor in drawing order;
    a client holding the drawing mirrors them with the same rule (replace in place, append, delete).
    """

    def __init__(self, graph: dict[str, Any], memory: LayoutMemory | None = None, max_new: int = 16) -> None:
        # Nothing here makes reference cycles; the cyclic collector would only rescan the many small
        # dicts and lists being built (measured: a third of the time at 20,000 nodes).
        with _no_gc():
            self._build(graph, memory, max_new)

    def _build(self, graph: dict[str, Any], memory: LayoutMemory | None, max_new: int) -> None:
        self.graph, self.memory, self.max_new = graph, memory, max_new
        self.was: dict[str, str] = {}  # old id by new id of boxes _recognise found renamed
        self.tensor_was: dict[str, str] = {}  # old name by new name of their outputs
        self._structure_key: tuple[Any, ...] | None = None
        self.nodes = {n["id"]: n for n in graph["nodes"]}
        outputs = set(graph["outputs"])
        self.folded = {n["id"] for n in graph["nodes"] if _is_folded(n, graph["tensors"], outputs)}
        self.boxes: dict[str, dict[str, Any]] = {}
        for box in self._io_boxes():
            self.boxes[box["id"]] = box
        for node in graph["nodes"]:
            if node["id"] not in self.folded:
                self.boxes[node["id"]] = _op_box(node, graph, self.folded)
        self.order = self._order()
        # per tensor: its edges (tensor, source id, target id, input slot) and its reads with no source box
        self.tensor_edges: dict[str, tuple[list[tuple[str, str, str, int]], list[tuple[str, str, int]]]] = {}
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
            positions, routes = _place(boxes, self.layers, [(index[s], index[d]) for _, s, d, _ in self.kept])
            for box, (x, y) in zip(boxes, positions):
                box["x"], box["y"] = round(x, 1), round(y, 1)
        tensors = graph["tensors"]
        self.edges: dict[str, list[dict[str, Any]]] = {}
        for (name, source, target, slot), route in zip(self.kept, routes):
            self.edges.setdefault(name, []).append(_edge(name, source, target, slot, route, tensors))
        self._measure()
        if memory is not None:
            for box in self.boxes.values():
                memory.boxes[box["id"]] = (box["x"], box["y"])
            for edges in self.edges.values():
                for edge in edges:
                    memory.routes[(edge["t"], edge["from"], edge["to"])] = edge["pts"]
            self._remember_nodes()

    # -- the answer ------------------------------------------------------------------------------
    def drawing(self) -> dict[str, Any]:
        """Boxes in order, edges and stubs naming boxes by position: what the editor draws."""
        index = {box_id: i for i, box_id in enumerate(self.order)}
        edges = [{**edge, "from": index[edge["from"]], "to": index[edge["to"]]}
                 for tensor_edges in self.edges.values() for edge in tensor_edges]
        return {"nodes": [self.boxes[i] for i in self.order], "edges": edges,
                "stubs": [{**stub, "to": index[stub["to"]]} for stub in self.stubs],
                "broadcast": sorted(self.broadcast), "width": self.width, "height": self.height,
                "incremental": self.incremental}

    # -- the next version ------------------------------------------------------------------------
    def update(self, graph: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any] | None:
        """Redraw for `graph`, the view's graph after the graph delta's part `delta` was applied to the
        graph this layout drew. Returns what changed in the drawing, naming boxes by id:
            {"boxes": {"removed": [id], "upserted": [box]}, "edges": [[tensor, [edge]], ...],
             "stubs": [...], "broadcast", "width", "height", "incremental": true}
        where each listed tensor's edges replace its earlier ones (none: it has no edges any more).
        None when more boxes are new than an incremental layout places: lay out again instead."""
        if self.memory is None:
            raise ValueError("only a layout with a memory can follow the graph's versions")
        with _no_gc():
            return self._update(graph, delta)

    def _update(self, graph: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any] | None:
        assert self.memory is not None
        self.graph = graph
        self.was, self.tensor_was = {}, {}
        tensors = graph["tensors"]
        for node_id in delta["nodes"]["removed"]:
            self.nodes.pop(node_id, None)
        upserted = [u["node"] for u in delta["nodes"]["upserted"]]
        for node in upserted:
            self.nodes[node["id"]] = node
        changed_tensors = set(delta["tensors"]["removed"]) | set(delta["tensors"]["upserted"])
        weights = set(delta["initializers"]["removed"]) | set(delta["initializers"]["upserted"])

        # which Constant nodes are rows of their reader now
        outputs = set(graph["outputs"])
        candidates = {n["id"] for n in upserted} | {tensors[t]["producer"] for t in changed_tensors
                                                   if t in tensors and tensors[t]["producer"] is not None}
        refolded: set[str] = set()
        self.folded = {f for f in self.folded if f in self.nodes}
        for node_id in candidates:
            node = self.nodes.get(node_id)
            folded = node is not None and _is_folded(node, tensors, outputs)
            if folded != (node_id in self.folded):
                refolded.add(node_id)
                (self.folded.add if folded else self.folded.discard)(node_id)
        changed_tensors.update(o for f in refolded if f in self.nodes for o in self.nodes[f]["outputs"] if o)

        # boxes: every op box whose node or weight rows may differ, and every input and output box
        before: dict[str, dict[str, Any] | None] = {}  # what each box touched here was (None: new)

        def drop(box_id: str) -> None:
            box = self.boxes.pop(box_id, None)
            before.setdefault(box_id, box)

        for box_id in self._io_ids + delta["nodes"]["removed"]:
            drop(box_id)
        rebuild = {n["id"] for n in upserted} | refolded
        for name in changed_tensors | weights:
            rebuild.update(tensors[name]["consumers"] if name in tensors else ())
        for node_id in rebuild:
            drop(node_id)
            node = self.nodes.get(node_id)
            if node is not None and node_id not in self.folded:
                self.boxes[node_id] = _op_box(node, graph, self.folded)
        fresh = set(rebuild)
        for box in self._io_boxes():
            before.setdefault(box["id"], None)
            self.boxes[box["id"]] = box
            fresh.add(box["id"])
        self.order = self._order()
        if len(self.order) != len(self.boxes):
            return None  # one id for two boxes (a graph output listed twice): the full layout handles it

        # edges of the tensors that changed, in place; the structure only when the edges say it changed
        for name in sorted(changed_tensors):
            found = self._edges_of(name, tensors[name]) if name in tensors else ([], [])
            if found[0] or found[1]:
                self.tensor_edges[name] = found
            else:
                self.tensor_edges.pop(name, None)
        was_broadcast = self.broadcast
        self._structure()

        unknown = self._unknown()
        if unknown is None:
            return None
        for box_id in fresh:
            box = self.boxes.get(box_id)
            if box is not None and box_id in self.memory.boxes:
                self._put(box, self.memory.boxes[box_id])
        self._place_new(unknown)
        moved = {box_id for box_id in fresh if box_id in self.boxes and
                 _geometry(self.boxes[box_id]) != _geometry(before.get(box_id))}
        redraw = set(changed_tensors) | (was_broadcast ^ self.broadcast)
        for box_id in moved:
            redraw.update(self._tensors_at(box_id))
        kept: dict[str, list[tuple[str, str, str, int]]] = {}
        for edge in self.kept:
            if edge[0] in redraw:
                kept.setdefault(edge[0], []).append(edge)
        changed_edges = []
        for name in sorted(redraw):
            edges = [_edge(name, s, d, slot, self._route(name, s, d), tensors) for _, s, d, slot in kept.get(name, ())]
            if edges:
                self.edges[name] = edges
            elif self.edges.pop(name, None) is None:
                continue
            changed_edges.append([name, edges])
            for edge in edges:
                self.memory.routes[(name, edge["from"], edge["to"])] = edge["pts"]
        self._measure()
        upserted_boxes = [self.boxes[i] for i in self.order if i in fresh and self.boxes[i] != before.get(i)]
        for box in upserted_boxes:
            self.memory.boxes[box["id"]] = (box["x"], box["y"])
        self._remember_nodes()
        self.incremental = True
        removed = sorted(box_id for box_id, box in before.items() if box is not None and box_id not in self.boxes)
        return {"boxes": {"removed": removed, "upserted": upserted_boxes},
                "edges": changed_edges, "stubs": self.stubs, "broadcast": sorted(self.broadcast),
                "width": self.width, "height": self.height, "incremental": True}

    # -- the parts -------------------------------------------------------------------------------
    def _io_boxes(self) -> list[dict[str, Any]]:
        """The boxes of the graph's inputs and outputs (remembered by id: the next graph may have others)."""
        tensors = self.graph["tensors"]
        boxes = [_io_box(name, "input", tensors) for name in self.graph["inputs"]] + \
            [_io_box(name, "output", tensors) for name in self.graph["outputs"]]
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
        return ["in:" + n for n in self.graph["inputs"]] + \
            [n["id"] for n in self.graph["nodes"] if n["id"] not in self.folded] + \
            ["out:" + n for n in self.graph["outputs"]]

    def _edges_of(self, name: str, t: dict[str, Any]) -> tuple[list[tuple[str, str, str, int]],
                                                                 list[tuple[str, str, int]]]:
        """One edge per (tensor, reader) from the producer box (or the input box) to the reader box;
        reads with no box producing them (outer scope) separately."""
        if name in self.graph.get("initializers", {}) and not t.get("is_input"):
            return [], []
        producer = t.get("producer")
        if producer in self.folded:
            return [], []
        boxes = self.boxes
        source = (producer if producer in boxes else None) if producer is not None else \
            ("in:" + name if "in:" + name in boxes else None)
        edges: list[tuple[str, str, str, int]] = []
        unresolved: list[tuple[str, str, int]] = []
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
            layers = _layers(len(self.order), links)
            broadcast = _broadcast_tensors([(name, index[d]) for name, _, d, _ in edges], layers)
            if broadcast:
                layers = _layers(len(self.order), [link for e, link in zip(edges, links) if e[0] not in broadcast])
            self._structure_key, self.layers, self.broadcast = key, layers, broadcast
        broadcast = self.broadcast
        stubs = [{"t": name, "to": d, "slot": slot, "in": True} for name, _, d, slot in edges if name in broadcast]
        stubs += [{"t": name, "to": d, "slot": slot, "in": True}
                  for _, unresolved in self.tensor_edges.values() for name, d, slot in unresolved]
        tensors = self.graph["tensors"]
        for name in sorted(broadcast):
            producer = tensors[name].get("producer")
            source = (producer if producer in index else None) if producer is not None else \
                ("in:" + name if "in:" + name in index else None)
            if source is not None:
                stubs.append({"t": name, "to": source, "slot": 0, "in": False})
        for stub in stubs:
            stub["label"] = name_label(stub["t"])
        self.kept = [e for e in edges if e[0] not in broadcast] if broadcast else edges
        self.stubs = stubs

    def _recognise(self, unknown: set[str]) -> None:
        """Give each box of these ids, which the memory does not know, the place it had in the memory's
        last drawing if it is a node whose id changed since (in self.was, old id by new id).

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
        the old ids and tensor names (_route)."""
        memory = self.memory
        assert memory is not None
        if not memory.nodes:
            return
        known = memory.boxes
        new = [(i, node) for i, node in enumerate(self.graph["nodes"]) if node["id"] in unknown]
        if not new:
            return
        gone = [(i, old) for i, old in enumerate(memory.nodes) if old[0] not in self.nodes and old[0] in known]
        by_output = {o: old for _, old in gone for o in old[2] if o}
        by_place = {(i, old[1]): old for i, old in gone}
        taken: set[str] = set()
        for i, node in new:
            old = next((by_output[o] for o in node["outputs"] if o in by_output), by_place.get((i, node["op_type"])))
            if old is None or old[0] in taken:
                continue
            taken.add(old[0])
            self.was[node["id"]] = old[0]
            known[node["id"]] = known[old[0]]
            self.tensor_was.update((o, p) for o, p in zip(node["outputs"], old[2]) if o and p and o != p)

    def _remember_nodes(self) -> None:
        """What the next drawing's _recognise compares with (the outputs lists are the view's, never
        changed in place)."""
        assert self.memory is not None
        self.memory.nodes = [(n["id"], n["op_type"], n["outputs"]) for n in self.graph["nodes"]]

    def _unknown(self) -> list[int] | None:
        """Positions of boxes the memory never placed, renamed ones aside, when few enough to place them
        incrementally."""
        if self.memory is None or not self.memory.boxes:
            return None
        known = self.memory.boxes
        unknown = [i for i, box_id in enumerate(self.order) if box_id not in known]
        if unknown:
            self._recognise({self.order[i] for i in unknown})
            unknown = [i for i in unknown if self.order[i] not in known]
        if len(unknown) <= self.max_new and len(unknown) <= max(4, len(self.order) // 4):
            return unknown
        return None

    def _place_new(self, unknown: list[int]) -> None:
        """Put boxes the memory does not know beside a placed neighbour, layer by layer."""
        if not unknown:
            return
        boxes = [self.boxes[i] for i in self.order]
        index = {box_id: i for i, box_id in enumerate(self.order)}
        new = set(unknown)
        preds: dict[int, list[int]] = {}
        succs: dict[int, list[int]] = {}
        for _, s, d, _ in self.kept:
            si, di = index[s], index[d]
            if di in new:
                preds.setdefault(di, []).append(si)
            if si in new:
                succs.setdefault(si, []).append(di)
        placed = set(range(len(boxes))) - new
        for i in sorted(unknown, key=lambda i: (self.layers[i], i)):
            box = boxes[i]
            above = [p for p in preds.get(i, ()) if p in placed]
            below = [s for s in succs.get(i, ()) if s in placed]
            if above:
                ref = max(above, key=lambda p: (boxes[p]["y"], -p))
                x = boxes[ref]["x"] + boxes[ref]["w"] / 2 + box["w"] / 2 + H_GAP
                y = boxes[ref]["y"] + boxes[ref]["h"] + LAYER_GAP
            elif below:
                ref = min(below, key=lambda s: (boxes[s]["y"], s))
                x = boxes[ref]["x"] + boxes[ref]["w"] / 2 + box["w"] / 2 + H_GAP
                y = boxes[ref]["y"] - box["h"] - LAYER_GAP
            else:
                x = max((b["x"] + b["w"] / 2 for j, b in enumerate(boxes) if j in placed), default=0.0) + box["w"]
                y = 0.0
            x = _free_x(boxes, placed, x, y, box["w"], box["h"])
            box["x"], box["y"] = round(x, 1), round(y, 1)
            placed.add(i)

    def _route(self, name: str, source: str, target: str) -> list[float]:
        """The remembered route of an edge when its ends did not move, else a straight line."""
        src, dst = self.boxes[source], self.boxes[target]
        start = [src["x"], round(src["y"] + src["h"], 1)]
        end = [dst["x"], dst["y"]]
        routes = self.memory.routes if self.memory is not None else {}
        old = routes.get((name, source, target))
        if old is None and self.was:  # an end was renamed: its route under the old names
            was = self.was
            old = routes.get((self.tensor_was.get(name, name), was.get(source, source), was.get(target, target)))
        if old is not None and old[:2] == start and old[-2:] == end:
            return old
        return start + end

    @staticmethod
    def _put(box: dict[str, Any], position: tuple[float, float]) -> None:
        box["x"], box["y"] = position

    def _measure(self) -> None:
        boxes = self.boxes.values()
        self.width = round(max((b["x"] + b["w"] / 2 for b in boxes), default=0.0), 1)
        self.height = round(max((b["y"] + b["h"] for b in boxes), default=0.0), 1)


@contextmanager
def _no_gc() -> Iterator[None]:
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _is_folded(node: dict[str, Any], tensors: dict[str, Any], outputs: set[str]) -> bool:
    """A Constant node read by exactly one node (and not a graph output) becomes a row of that node."""
    if node["op_type"] != "Constant" or len(node["outputs"]) != 1 or node.get("subgraphs"):
        return False
    out = node["outputs"][0]
    return len(set(tensors.get(out, {}).get("consumers", ()))) == 1 and out not in outputs


def _io_box(name: str, kind: str, tensors: dict[str, Any]) -> dict[str, Any]:
    t = tensors.get(name, {})
    rows = [["", f"{t.get('dtype') or ''}[{shape_label(t.get('shape'))}]"]]
    box = {"id": ("in:" if kind == "input" else "out:") + name, "kind": kind, "title": name, "cat": kind,
           "rows": rows, "tensor": name}
    return _sized(box)


def _op_box(node: dict[str, Any], graph: dict[str, Any], folded: set[str]) -> dict[str, Any]:
    """A node's box: weight rows for initializers and folded Constants it reads, then key attributes."""
    tensors, initializers = graph["tensors"], graph.get("initializers", {})
    rows: list[list[str]] = []
    formal = _input_names(node["op_type"], node["domain"])
    for pos, name in enumerate(node["inputs"]):
        weight = initializers.get(name)
        if weight is None and name:
            producer = tensors.get(name, {}).get("producer")
            if producer in folded:
                weight = tensors[name]
        if weight is not None:
            label = formal[pos] if pos < len(formal) else f"in{pos}"
            rows.append([label, f"\u27e8{shape_label(weight.get('shape'))}\u27e9"])
    attrs = node.get("attributes", {})
    keys = [k for k in _KEY_ATTRIBUTES if k in attrs] + [k for k in attrs if k not in _KEY_ATTRIBUTES]
    for key in keys[:MAX_ATTR_ROWS]:
        rows.append([key, _short(attrs[key])])
    box = {"id": node["id"], "kind": "op", "title": node["op_type"], "name": node["name"],
           "cat": category(node["op_type"], node["domain"]), "rows": rows}
    if node.get("subgraphs"):
        box["bodies"] = [[s["attribute"], s["index"]] for s in node["subgraphs"]]
    if "ref" in node:
        box["ref"] = node["ref"]
    return _sized(box)


def _sized(box: dict[str, Any]) -> dict[str, Any]:
    box["w"] = _box_width(box["title"], box["rows"])
    box["h"] = float(TITLE_H + ROW_H * len(box["rows"]) + (4 if box["rows"] else 0))
    return box


def _edge(name: str, source: str, target: str, slot: int, route: list[float], tensors: dict[str, Any]) -> dict[str, Any]:
    return {"t": name, "from": source, "to": target, "slot": slot, "pts": route,
            "label": shape_label(tensors.get(name, {}).get("shape"))}


def _geometry(box: dict[str, Any] | None) -> tuple[float, ...] | None:
    return None if box is None else (box["x"], box["y"], box["w"], box["h"])


def name_label(name: str) -> str:
    return name if len(name) <= 28 else "\u2026" + name[-27:]


def _free_x(boxes: list[dict[str, Any]], placed: set[int], x: float, y: float, w: float, h: float) -> float:
    """The first centre at or right of x where a w*h box at y overlaps no placed box."""
    while True:
        clash = [boxes[j] for j in placed
                 if boxes[j]["y"] < y + h and y < boxes[j]["y"] + boxes[j]["h"]
                 and abs(boxes[j]["x"] - x) < (boxes[j]["w"] + w) / 2 + H_GAP / 2]
        if not clash:
            return x
        x = max(b["x"] + b["w"] / 2 for b in clash) + w / 2 + H_GAP


def _topo_order(n: int, succ: list[list[int]], indeg: list[int]) -> list[int]:
    """Kahn's order; nodes on a cycle (never in a valid model, but be safe) go last in index order."""
    indeg = list(indeg)
    queue = deque(i for i in range(n) if indeg[i] == 0)
    order: list[int] = []
    while queue:
        v = queue.popleft()
        order.append(v)
        for w in succ[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                queue.append(w)
    if len(order) < n:
        seen = set(order)
        order += [i for i in range(n) if i not in seen]
    return order


def _layers(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    """Longest-path layers, then every node with no more readers than inputs moved down next to its
    first reader: weights, shape side chains and graph inputs sit beside where they are used."""
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for s, t in pairs:
        if s != t:
            succ[s].append(t)
            pred[t].append(s)
            indeg[t] += 1
    order = _topo_order(n, succ, indeg)
    layer = [0] * n
    for v in order:
        for w in succ[v]:
            if layer[w] <= layer[v]:
                layer[w] = layer[v] + 1
    for v in reversed(order):
        if succ[v] and len(pred[v]) <= len(succ[v]):
            lowest = min(layer[w] for w in succ[v]) - 1
            if lowest > layer[v]:
                layer[v] = lowest
    return layer


def _broadcast_tensors(reads: list[tuple[str, int]], layers: list[int]) -> set[str]:
    """Tensors read (tensor, reader position) by many boxes over many layers."""
    reader_layers: dict[str, list[int]] = {}
    for name, target in reads:
        reader_layers.setdefault(name, []).append(layers[target])
    return {name for name, ls in reader_layers.items()
            if len(ls) >= BROADCAST_MIN_READERS and max(ls) - min(ls) >= BROADCAST_MIN_SPAN}


def _place(boxes: list[dict[str, Any]], layers: list[int],
           pairs: list[tuple[int, int]]) -> tuple[list[tuple[float, float]], list[list[float]]]:
    """Pixel positions (box top-left x is centre - w/2; we return centre x and top y) and edge routes."""
    import igraph

    n = len(boxes)
    if n == 0:
        return [], []
    g = igraph.Graph(n=n, edges=pairs, directed=True)
    lay = g.layout_sugiyama(layers=layers, hgap=1, vgap=1, maxiter=20)
    coords = lay.coords
    routing = lay.edge_routing if pairs else []

    n_layers = max(layers) + 1
    # Items of each layer: (igraph x, width, kind, ref) where ref is a node index or (edge, point).
    rows: list[list[tuple[float, float, int, Any]]] = [[] for _ in range(n_layers)]
    for i in range(n):
        rows[layers[i]].append((coords[i][0], boxes[i]["w"], 0, i))
    for e, points in enumerate(routing):
        for k, (px, py) in enumerate(points):
            rows[int(round(py))].append((px, DUMMY_W, 1, (e, k)))
    heights = [0.0] * n_layers
    for i in range(n):
        heights[layers[i]] = max(heights[layers[i]], boxes[i]["h"])
    tops = [0.0] * n_layers
    y = 0.0
    for k in range(n_layers):
        tops[k] = y
        y += max(heights[k], 20.0) + LAYER_GAP

    xs = [0.0] * n
    dummy_x: dict[tuple[int, int], float] = {}
    for k, items in enumerate(rows):
        items.sort(key=lambda item: item[0])
        placed = _pack([item[0] * UNIT for item in items], [item[1] for item in items])
        for item, x in zip(items, placed):
            if item[2] == 0:
                xs[item[3]] = x
            else:
                dummy_x[item[3]] = x
    shift = min(xs[i] - boxes[i]["w"] / 2 for i in range(n))
    shift = min([shift] + [x - DUMMY_W / 2 for x in dummy_x.values()]) - 20.0
    positions = [(xs[i] - shift, tops[layers[i]]) for i in range(n)]

    routes: list[list[float]] = []
    for e, (s, t) in enumerate(pairs):
        sx, sy = positions[s]
        tx, ty = positions[t]
        pts = [round(sx, 1), round(sy + boxes[s]["h"], 1)]
        for k, (_, py) in enumerate(routing[e] if e < len(routing) else ()):
            layer = int(round(py))
            x = round(dummy_x[(e, k)] - shift, 1)
            pts += [x, round(tops[layer], 1), x, round(tops[layer] + heights[layer], 1)]
        pts += [round(tx, 1), round(ty, 1)]
        routes.append(pts)
    return positions, routes


def _pack(desired: list[float], widths: list[float]) -> list[float]:
    """Centres as close as possible (least squares) to the desired ones, in this order, without overlap.

    With offsets s_i (the least distance from the first centre), y_i = x_i - s_i must not decrease,
    so the best y is the isotonic regression of desired_i - s_i: pool adjacent violators, O(n).
    """
    offsets = [0.0] * len(desired)
    for i in range(1, len(desired)):
        offsets[i] = offsets[i - 1] + (widths[i - 1] + widths[i]) / 2 + H_GAP
    blocks: list[list[float]] = []  # [mean, count]
    for d, s in zip(desired, offsets):
        blocks.append([d - s, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, count = blocks.pop()
            prev = blocks[-1]
            prev[0] = (prev[0] * prev[1] + mean * count) / (prev[1] + count)
            prev[1] += count
    out: list[float] = []
    for mean, count in blocks:
        out.extend([mean] * int(count))
    return [y + s for y, s in zip(out, offsets)]
