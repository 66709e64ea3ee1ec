"""The server-side layout and the editor's own routes (layout, histogram, operators), without a browser."""

from __future__ import annotations

import itertools
import json
import urllib.parse
import urllib.request
from collections import defaultdict
from typing import Any

from app.graph import load_model
from app.view.graph_view import graph_view
from app.view.layout import LayoutMemory, layout_graph
from bench.render import resnet, transformer


def _no_overlap(drawing: dict[str, Any]) -> None:
    rows: dict[float, list[tuple[float, float]]] = defaultdict(list)
    for b in drawing["nodes"]:
        rows[b["y"]].append((b["x"] - b["w"] / 2, b["x"] + b["w"] / 2))
    for spans in rows.values():
        spans.sort()
        for (_, right), (left, _) in itertools.pairwise(spans):
            assert left >= right - 0.5


def test_transformer_mask_is_a_broadcast_stub_and_boxes_do_not_overlap() -> None:
    graph = transformer(2000)
    drawing = layout_graph(graph)
    mask_readers = [
        n
        for n in graph["nodes"]
        if any(
            t.startswith("t") and t in graph["tensors"] and len(graph["tensors"][t]["consumers"]) > 8
            for t in n["inputs"]
        )
    ]
    assert mask_readers
    assert len(drawing["broadcast"]) == 1
    assert sum(1 for s in drawing["stubs"] if s["in"]) >= 8
    assert not any(e["t"] in drawing["broadcast"] for e in drawing["edges"])
    _no_overlap(drawing)
    # initializers are rows of their reader's box, not boxes of their own
    assert len(drawing["nodes"]) == len(graph["nodes"]) + len(graph["inputs"]) + len(graph["outputs"])


def test_layers_flow_downwards() -> None:
    drawing = layout_graph(resnet(500))
    nodes = drawing["nodes"]
    for e in drawing["edges"]:
        assert nodes[e["to"]]["y"] > nodes[e["from"]]["y"]
    _no_overlap(drawing)


def test_incremental_layout_keeps_positions(fixture_model: Any) -> None:
    doc = load_model(fixture_model("ppocrv4_det"))
    memory = LayoutMemory()
    first = layout_graph(graph_view(doc)["graph"], memory)
    assert not first["incremental"]
    doc.apply(
        [
            {"op": "add_output", "tensor": "p2o.Add.281"},
            {"op": "delete_node", "node": "p2o.Sigmoid.0", "descendants": True},
        ]
    )
    second = layout_graph(graph_view(doc)["graph"], memory)
    assert second["incremental"]
    before = {b["id"]: (b["x"], b["y"]) for b in first["nodes"]}
    after = {b["id"]: (b["x"], b["y"]) for b in second["nodes"]}
    assert "p2o.Sigmoid.0" not in after
    assert all(after[i] == before[i] for i in after if i in before)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def _upload(server: str, path: Any) -> str:
    boundary = "----owb"
    data = path.read_bytes()
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(
        server + "/api/sessions",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["id"]


def test_editor_routes(server: str, fixture_model: Any) -> None:
    sid = _upload(server, fixture_model("silero_vad_v6"))
    base = f"{server}/api/sessions/{sid}"
    main = _get(base + "/layout")
    assert main["version"] == 0 and main["scope"] == []
    owner = next(b for b in main["nodes"] if b.get("bodies"))
    attr, index = owner["bodies"][0]
    scope = json.dumps([owner["id"], attr if not index else f"{attr}:{index}"])
    body = _get(base + "/layout?scope=" + urllib.parse.quote(scope))
    assert body["nodes"] and body["scope"] == json.loads(scope)
    ops = _get(base + "/operators")
    names = {o["op_type"] for o in ops["operators"]}
    assert {"Conv", "Relu", "If"} <= names
    relu = next(o for o in ops["operators"] if o["op_type"] == "LeakyRelu")
    assert relu["attributes"][0]["type"] == "float"
    base = f"{server}/api/sessions/{_upload(server, fixture_model('minilm_l6_int8'))}"
    view = _get(base + "/graph")
    weight = next(n for n, i in view["graph"]["initializers"].items() if len(i["shape"]) >= 2)
    hist = _get(base + "/histogram/" + urllib.parse.quote(weight, safe=""))
    assert len(hist["counts"]) == 40 and len(hist["edges"]) == 41
    page = urllib.request.urlopen(f"{server}/s/{sid}", timeout=30).read().decode()  # the editor page
    assert sid in page and "main.js" in page
