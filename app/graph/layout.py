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
    """Where each box and edge of a graph was last drawn, so a local edit keeps the picture still."""

    def __init__(self) -> None:
        self.boxes: dict[str, tuple[float, float]] = {}
        self.routes: dict[tuple[str, str, str], list[float]] = {}

    def remember(self, drawing: dict[str, Any]) -> None:
        boxes = drawing["nodes"]
        for box in boxes:
            self.boxes[box["id"]] = (box["x"], box["y"])
        for edge in drawing["edges"]:
            self.routes[(edge["t"], boxes[edge["from"]]["id"], boxes[edge["to"]]["id"])] = edge["pts"]


def layout_graph(graph: dict[str, Any], memory: LayoutMemory | None = None, max_new: int = 16) -> dict[str, Any]:
    """Boxes with positions, edges with routes, and broadcast stubs for one graph of the view.

    With a memory of an earlier layout of the same graph, and at most `max_new` boxes it has never
    placed, the layout is incremental: known boxes stay where they were, new ones go beside their
    neighbours ("incremental": true in the answer). Otherwise the whole graph is laid out.
    """
    # Nothing here makes reference cycles; the cyclic collector would only rescan the many small
    # dicts and lists being built (measured: a third of the time at 20,000 nodes).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _layout_graph(graph, memory, max_new)
    finally:
        if collecting:
            gc.enable()


def _layout_graph(graph: dict[str, Any], memory: LayoutMemory | None, max_new: int) -> dict[str, Any]:
    boxes, edges, stubs, broadcast, layers = _drawing(graph)
    kept_pairs = [(s, t) for _, s, t, _ in edges]
    incremental = False
    if memory is not None and memory.boxes:
        unknown = sum(1 for b in boxes if b["id"] not in memory.boxes)
        if unknown <= max_new and unknown <= max(4, len(boxes) // 4):
            routes = _place_known(boxes, edges, layers, memory)
            incremental = True
    if not incremental:
        positions, routes = _place(boxes, layers, kept_pairs)
        for box, (x, y) in zip(boxes, positions):
            box["x"], box["y"] = round(x, 1), round(y, 1)
    tensors = graph["tensors"]
    out_edges = [{"t": name, "from": s, "to": t, "slot": slot, "pts": route,
                  "label": shape_label(tensors.get(name, {}).get("shape"))}
                 for (name, s, t, slot), route in zip(edges, routes)]
    for stub in stubs:
        stub["label"] = name_label(stub["t"])
    width = max((b["x"] + b["w"] / 2 for b in boxes), default=0.0)
    height = max((b["y"] + b["h"] for b in boxes), default=0.0)
    drawing = {"nodes": boxes, "edges": out_edges, "stubs": stubs, "broadcast": sorted(broadcast),
               "width": round(width, 1), "height": round(height, 1), "incremental": incremental}
    if memory is not None:
        memory.remember(drawing)
    return drawing


def _drawing(graph: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[str, int, int, int]],
                                              list[dict[str, Any]], set[str], list[int]]:
    """Boxes (content and size), the edges that drive the layout, stubs, broadcast tensors, layers."""
    tensors: dict[str, dict[str, Any]] = graph["tensors"]
    initializers: dict[str, Any] = graph.get("initializers", {})
    view_nodes: list[dict[str, Any]] = graph["nodes"]
    outputs = set(graph["outputs"])

    # Constant nodes read by exactly one node (and not a graph output) become rows of that node.
    folded: set[str] = set()
    for node in view_nodes:
        if node["op_type"] == "Constant" and len(node["outputs"]) == 1 and not node.get("subgraphs"):
            out = tensors.get(node["outputs"][0], {})
            if len(set(out.get("consumers", ()))) == 1 and node["outputs"][0] not in outputs:
                folded.add(node["id"])

    boxes: list[dict[str, Any]] = []
    index: dict[str, int] = {}

    def add_box(box: dict[str, Any]) -> None:
        index[box["id"]] = len(boxes)
        boxes.append(box)

    for name in graph["inputs"]:
        t = tensors.get(name, {})
        rows = [["", f"{t.get('dtype') or ''}[{shape_label(t.get('shape'))}]"]]
        add_box({"id": "in:" + name, "kind": "input", "title": name, "cat": "input", "rows": rows, "tensor": name})
    for node in view_nodes:
        if node["id"] in folded:
            continue
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
        add_box(box)
    for name in graph["outputs"]:
        t = tensors.get(name, {})
        rows = [["", f"{t.get('dtype') or ''}[{shape_label(t.get('shape'))}]"]]
        add_box({"id": "out:" + name, "kind": "output", "title": name, "cat": "output", "rows": rows,
                 "tensor": name})
    for box in boxes:
        box["w"] = _box_width(box["title"], box["rows"])
        box["h"] = float(TITLE_H + ROW_H * len(box["rows"]) + (4 if box["rows"] else 0))

    # Edges: one per (tensor, reader), from the producer box (or the input box) to the reader box.
    edges: list[tuple[str, int, int, int]] = []  # tensor, source, target, input slot of the target
    unresolved: list[tuple[str, int, int]] = []  # tensor with no box producing it (outer scope), reader, slot
    node_inputs = {n["id"]: n["inputs"] for n in view_nodes}
    for name, t in tensors.items():
        if name in initializers and not t.get("is_input"):
            continue
        producer = t.get("producer")
        if producer in folded:
            continue
        source = index.get(producer) if producer is not None else index.get("in:" + name)
        for reader in dict.fromkeys(t.get("consumers", ())):
            target = index.get(reader)
            if target is None:
                continue
            inputs = node_inputs.get(reader, [])
            slot = inputs.index(name) if name in inputs else len(inputs)
            if source is None:
                unresolved.append((name, target, slot))
            else:
                edges.append((name, source, target, slot))
        if name in outputs and source is not None:
            edges.append((name, source, index["out:" + name], 0))

    n = len(boxes)
    layers = _layers(n, [(s, t) for _, s, t, _ in edges])
    broadcast = _broadcast_tensors(edges, layers)
    stubs = [{"t": name, "to": target, "slot": slot, "in": True} for name, _, target, slot in edges
             if name in broadcast]
    stubs += [{"t": name, "to": target, "slot": slot, "in": True} for name, target, slot in unresolved]
    for name in sorted(broadcast):
        producer = tensors[name].get("producer")
        source = index.get(producer) if producer is not None else index.get("in:" + name)
        if source is not None:
            stubs.append({"t": name, "to": source, "slot": 0, "in": False})
    if broadcast:
        edges = [e for e in edges if e[0] not in broadcast]
        layers = _layers(n, [(s, t) for _, s, t, _ in edges])
    return boxes, edges, stubs, broadcast, layers


def _place_known(boxes: list[dict[str, Any]], edges: list[tuple[str, int, int, int]], layers: list[int],
                 memory: LayoutMemory) -> list[list[float]]:
    """Keep remembered boxes where they were; put new ones beside a neighbour; reuse unchanged routes."""
    preds: dict[int, list[int]] = {}
    succs: dict[int, list[int]] = {}
    for _, s, t, _ in edges:
        preds.setdefault(t, []).append(s)
        succs.setdefault(s, []).append(t)
    placed: set[int] = set()
    for i, box in enumerate(boxes):
        known = memory.boxes.get(box["id"])
        if known is not None:
            box["x"], box["y"] = known
            placed.add(i)
    for i in sorted(set(range(len(boxes))) - placed, key=lambda i: layers[i]):
        box = boxes[i]
        above = [p for p in preds.get(i, ()) if p in placed]
        below = [s for s in succs.get(i, ()) if s in placed]
        if above:
            ref = max(above, key=lambda p: boxes[p]["y"])
            x = boxes[ref]["x"] + boxes[ref]["w"] / 2 + box["w"] / 2 + H_GAP
            y = boxes[ref]["y"] + boxes[ref]["h"] + LAYER_GAP
        elif below:
            ref = min(below, key=lambda s: boxes[s]["y"])
            x = boxes[ref]["x"] + boxes[ref]["w"] / 2 + box["w"] / 2 + H_GAP
            y = boxes[ref]["y"] - box["h"] - LAYER_GAP
        else:
            x = max((b["x"] + b["w"] / 2 for j, b in enumerate(boxes) if j in placed), default=0.0) + box["w"]
            y = 0.0
        x = _free_x(boxes, placed, x, y, box["w"], box["h"])
        box["x"], box["y"] = round(x, 1), round(y, 1)
        placed.add(i)
    routes: list[list[float]] = []
    for name, s, t, _ in edges:
        src, dst = boxes[s], boxes[t]
        start = [src["x"], round(src["y"] + src["h"], 1)]
        end = [dst["x"], dst["y"]]
        old = memory.routes.get((name, src["id"], dst["id"]))
        if old is not None and old[:2] == start and old[-2:] == end:
            routes.append(old)
        else:
            routes.append(start + end)
    return routes


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


def _broadcast_tensors(edges: list[tuple[str, int, int, int]], layers: list[int]) -> set[str]:
    reader_layers: dict[str, list[int]] = {}
    for name, _, target, _ in edges:
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
