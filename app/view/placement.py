"""Where boxes go: the Sugiyama placement of a whole graph, and new boxes put beside placed ones.

Why on the server and not in the browser: igraph's Sugiyama (C) lays out 20,000 nodes in about 0.1 s,
while the browser libraries take seconds or overflow their stack (see the rendering notes). Around
igraph, as Netron does for the picture users expect:
- broadcast tensors (read by many nodes spread over many layers: attention masks, shared
  constants) are left out of the layout and drawn as labelled stubs at their readers;
- layers are ours (longest path, then sources pulled down next to their first reader);
- igraph orders each layer and gives x positions in units; we turn those into pixels that respect
  each box's width (least-squares placement under no-overlap constraints, per layer).
Boxes are dicts with w and h; a placed box has x (its centre) and y (its top).
"""

from __future__ import annotations

from collections import deque
from typing import Any

LAYER_GAP = 42  # room for the shape label on edges
H_GAP = 18
DUMMY_W = 10
UNIT = 72  # pixels per igraph x unit, before widths push boxes apart
BROADCAST_MIN_READERS = 8
BROADCAST_MIN_SPAN = 12  # layers between its first and last reader


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


def layers_of(n: int, pairs: list[tuple[int, int]]) -> list[int]:
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


def broadcast_tensors(reads: list[tuple[str, int]], layers: list[int]) -> set[str]:
    """Tensors read (tensor, reader position) by many boxes over many layers."""
    reader_layers: dict[str, list[int]] = {}
    for name, target in reads:
        reader_layers.setdefault(name, []).append(layers[target])
    return {
        name
        for name, ls in reader_layers.items()
        if len(ls) >= BROADCAST_MIN_READERS and max(ls) - min(ls) >= BROADCAST_MIN_SPAN
    }


def place(
    boxes: list[dict[str, Any]], layers: list[int], pairs: list[tuple[int, int]]
) -> tuple[list[tuple[float, float]], list[list[float]]]:
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
    for items in rows:
        items.sort(key=lambda item: item[0])
        placed = _pack([item[0] * UNIT for item in items], [item[1] for item in items])
        for item, x in zip(items, placed, strict=True):
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
    for d, s in zip(desired, offsets, strict=True):
        blocks.append([d - s, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, count = blocks.pop()
            prev = blocks[-1]
            prev[0] = (prev[0] * prev[1] + mean * count) / (prev[1] + count)
            prev[1] += count
    out: list[float] = []
    for mean, count in blocks:
        out.extend([mean] * int(count))
    return [y + s for y, s in zip(out, offsets, strict=True)]


def place_beside(
    boxes: list[dict[str, Any]], layers: list[int], pairs: list[tuple[int, int]], unknown: list[int]
) -> None:
    """Put the boxes at these positions, which have no place yet, beside a placed neighbour (along the
    edges `pairs` between positions), layer by layer; the other boxes stay where they are."""
    if not unknown:
        return
    new = set(unknown)
    preds: dict[int, list[int]] = {}
    succs: dict[int, list[int]] = {}
    for si, di in pairs:
        if di in new:
            preds.setdefault(di, []).append(si)
        if si in new:
            succs.setdefault(si, []).append(di)
    placed = set(range(len(boxes))) - new
    for i in sorted(unknown, key=lambda i: (layers[i], i)):
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


def _free_x(boxes: list[dict[str, Any]], placed: set[int], x: float, y: float, w: float, h: float) -> float:
    """The first centre at or right of x where a w*h box at y overlaps no placed box."""
    while True:
        clash = [
            boxes[j]
            for j in placed
            if boxes[j]["y"] < y + h
            and y < boxes[j]["y"] + boxes[j]["h"]
            and abs(boxes[j]["x"] - x) < (boxes[j]["w"] + w) / 2 + H_GAP / 2
        ]
        if not clash:
            return x
        x = max(b["x"] + b["w"] / 2 for b in clash) + w / 2 + H_GAP
