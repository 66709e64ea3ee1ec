"""GET /layout/delta: after an edit, undo or redo the held layout follows the graph delta, and

- the layout delta applied to the older drawing (as the editor's delta.js does) gives the drawing the
  server answers for the new version;
- that drawing is what laying out the new version's full view with the same memory gives (the
  incremental layout is the same function of the graph, only cheaper);
- when it cannot follow, it says so and the full layout still works;
- a rename that changes node ids (rename_node, a namesake's id flipping, rename_tensor of an unnamed
  node's output) moves no box and no edge, in the delta and in a new layout, nor does its undo.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper

from app.view.layout import LayoutMemory, layout_graph

from .conftest import get_ok, upload
from .models import blocks_model
from .test_edits import edit
from .test_graph_delta import CASES, open_at, view


def layout(client: TestClient, sid: str, **params: Any) -> dict[str, Any]:
    return get_ok(client, f"/api/sessions/{sid}/layout", **params)


def layout_delta(client: TestClient, sid: str, since: int) -> dict[str, Any]:
    return get_ok(client, f"/api/sessions/{sid}/layout/delta", since=since)


def remember(memory: LayoutMemory, drawing: dict[str, Any], graph: dict[str, Any]) -> None:
    """What the server's memory holds after drawing this for `graph`: every box and route it ever drew,
    and the nodes it drew last."""
    boxes = drawing["nodes"]
    for box in boxes:
        memory.boxes[box["id"]] = (box["x"], box["y"])
    for e in drawing["edges"]:
        memory.routes[(e["t"], boxes[e["from"]]["id"], boxes[e["to"]]["id"])] = e["pts"]
    memory.nodes = [(n["id"], n["op_type"], n["outputs"]) for n in graph["nodes"]]


def apply_layout_delta(drawing: dict[str, Any], delta: dict[str, Any], graph: dict[str, Any]) -> dict[str, Any]:
    """The editor's rule (app/static/js/delta.js): boxes by id in the order of the new graph (inputs,
    nodes that have a box, outputs), edges kept per tensor in first-seen order, each listed tensor's
    edges replacing its old ones in place, new tensors last."""
    ids = [b["id"] for b in drawing["nodes"]]
    boxes = {b["id"]: b for b in drawing["nodes"]}
    per_tensor: dict[str, list[dict[str, Any]]] = {}
    for e in drawing["edges"]:
        per_tensor.setdefault(e["t"], []).append({**e, "from": ids[e["from"]], "to": ids[e["to"]]})
    for box_id in delta["boxes"]["removed"]:
        del boxes[box_id]
    for box in delta["boxes"]["upserted"]:
        boxes[box["id"]] = box
    for name, edges in delta["edges"]:
        if edges:
            per_tensor[name] = edges
        else:
            del per_tensor[name]
    order = (
        [f"in:{n}" for n in graph["inputs"]]
        + [n["id"] for n in graph["nodes"] if n["id"] in boxes]
        + [f"out:{n}" for n in graph["outputs"]]
    )
    assert sorted(order) == sorted(boxes)
    index = {box_id: i for i, box_id in enumerate(order)}
    return {
        "nodes": [boxes[i] for i in order],
        "edges": [{**e, "from": index[e["from"]], "to": index[e["to"]]} for es in per_tensor.values() for e in es],
        "stubs": [{**s, "to": index[s["to"]]} for s in delta["stubs"]],
        "broadcast": delta["broadcast"],
        "width": delta["width"],
        "height": delta["height"],
        "incremental": delta["incremental"],
        "version": delta["version"],
        "scope": [],
    }


def canonical(drawing: dict[str, Any]) -> dict[str, Any]:
    """A drawing with edges and stubs as sorted sets naming boxes by id (their order is not part of it)."""
    ids = [b["id"] for b in drawing["nodes"]]
    return {
        "nodes": drawing["nodes"],
        "edges": sorted(
            json.dumps({**e, "from": ids[e["from"]], "to": ids[e["to"]]}, sort_keys=True) for e in drawing["edges"]
        ),
        "stubs": sorted(json.dumps({**s, "to": ids[s["to"]]}, sort_keys=True) for s in drawing["stubs"]),
        **{k: drawing[k] for k in ("broadcast", "width", "height", "incremental")},
    }


def follows(
    client: TestClient, sid: str, before: dict[str, Any], memory: LayoutMemory, reason: str | None
) -> dict[str, Any]:
    """Check one step; returns the drawing of the new version (and updates `memory` like the server's)."""
    graph = client.get(f"/api/sessions/{sid}/graph").json()
    answer = layout_delta(client, sid, before["version"])
    assert answer["version"] == graph["version"]
    if reason is not None:
        assert answer["full"] and answer["reason"] == reason, answer
        drawing = layout(client, sid)
        memory.boxes.clear()
        memory.routes.clear()
        remember(memory, drawing, graph["graph"])
        return drawing
    assert not answer["full"], answer
    expected = layout_graph(copy.deepcopy(graph["graph"]), copy.deepcopy(memory))
    drawing = layout(client, sid)
    assert apply_layout_delta(before, answer, graph["graph"]) == drawing
    assert canonical(drawing) == canonical(expected)
    assert len(answer["boxes"]["upserted"]) < max(40, len(drawing["nodes"]) // 4)
    remember(memory, drawing, graph["graph"])
    return drawing


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case[3] != "subgraph_changed"])
def test_layout_follows_an_edit_its_undo_and_redo(client: TestClient, open_session: Any, name: str) -> None:
    fixture, setup, edits, reason = CASES[name]
    sid = open_at(client, open_session, fixture, setup)
    before = layout(client, sid)
    memory = LayoutMemory()
    remember(memory, before, view(client, sid)["graph"])
    assert edit(client, sid, *edits).status_code == 200
    before = follows(client, sid, before, memory, reason)
    assert client.post(f"/api/sessions/{sid}/undo").status_code == 200
    before = follows(client, sid, before, memory, reason)
    assert client.post(f"/api/sessions/{sid}/redo").status_code == 200
    follows(client, sid, before, memory, reason)


def test_broadcast_stubs_become_edges(client: TestClient, open_session: Any) -> None:
    fixture, setup, edits, _ = CASES["set_node_input ending a broadcast"]
    sid = open_at(client, open_session, fixture, setup)
    shape = "jax2tf_get_logits_/pjit_get_logits_/MagikaV2/LayerNorm_1/Reshape__131:0"
    assert layout(client, sid)["broadcast"] == [shape]
    assert edit(client, sid, *edits).status_code == 200
    answer = layout_delta(client, sid, 0)
    assert answer["broadcast"] == [] and answer["stubs"] == []
    assert len(dict(answer["edges"])[shape]) == 7


def test_the_same_delta_twice_and_a_version_not_held(client: TestClient, open_session: Any) -> None:
    sid = open_session("ppocrv4_det")
    layout(client, sid)
    assert edit(client, sid, {"op": "rename_node", "node": "p2o.Conv.0", "to": "stem"}).status_code == 200
    first = layout_delta(client, sid, 0)
    assert not first["full"] and layout_delta(client, sid, 0) == first  # a retry gets the same answer
    assert edit(client, sid, {"op": "rename_node", "node": "stem", "to": "stem2"}).status_code == 200
    assert layout_delta(client, sid, 0)["reason"] == "no_layout"  # the layout held is at version 1
    assert not layout_delta(client, sid, 1)["full"]
    other = open_session("logreg_iris")
    assert layout_delta(client, other, 0)["reason"] == "no_layout"  # never laid out


def test_many_new_boxes_ask_for_a_new_layout(client: TestClient, open_session: Any) -> None:
    sid = open_session("ppocrv4_det")
    layout(client, sid)
    edits = [
        {"op": "add_node", "op_type": "Relu", "inputs": ["hardswish_58.tmp_0"], "outputs": [f"r{k}"]} for k in range(20)
    ]
    assert edit(client, sid, *edits).status_code == 200
    assert layout_delta(client, sid, 0)["reason"] == "relayout"
    drawing = layout(client, sid)
    assert drawing["version"] == 20 and not drawing["incremental"]
    assert sum(1 for b in drawing["nodes"] if b["title"] == "Relu") >= 20


def test_scope_layouts_are_held_apart(client: TestClient, open_session: Any) -> None:
    sid = open_session("silero_vad_v6")
    main = layout(client, sid)
    body = layout(client, sid, scope=json.dumps(["If_0", "then_branch"]))
    assert body["scope"] == ["If_0", "then_branch"] and len(body["nodes"]) != len(main["nodes"])
    assert edit(client, sid, {"op": "rename_node", "node": "If_0", "to": "branch"}).status_code == 200
    answer = layout_delta(client, sid, 0)
    assert not answer["full"] and "branch" in {b["id"] for b in answer["boxes"]["upserted"]}
    r = client.get(f"/api/sessions/{sid}/layout", params={"scope": json.dumps(["If_0", "then_branch"])})
    assert r.status_code == 404  # the body's owner has another id now


def twins_model(path: Path) -> Path:
    """x -> Relu 'twin' -> a -> Relu 'twin' -> b -> Relu (unnamed) -> c -> Relu 'last' -> y: ids @a, @b, @c, last."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="twin"),
        helper.make_node("Relu", ["a"], ["b"], name="twin"),
        helper.make_node("Relu", ["b"], ["c"]),
        helper.make_node("Relu", ["c"], ["y"], name="last"),
    ]
    graph = helper.make_graph(
        nodes,
        "twins",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


# model, the rename, and the ids it changes (old -> new)
RENAMES: dict[str, tuple[Callable[[Path], Path], dict[str, Any], dict[str, str]]] = {
    "rename_node": (
        lambda p: blocks_model(p, 60),
        {"op": "rename_node", "node": "blk4/matmul", "to": "mm"},
        {"blk4/matmul": "mm"},
    ),
    "rename_node of an unnamed node": (
        twins_model,
        {"op": "rename_node", "node": "@c", "to": "third"},
        {"@c": "third"},
    ),
    "rename_node flipping a namesake's id": (
        twins_model,
        {"op": "rename_node", "node": "@a", "to": "first"},
        {"@a": "first", "@b": "twin"},
    ),
    "rename_tensor of an unnamed node's output": (
        lambda p: blocks_model(p, 60),
        {"op": "rename_tensor", "tensor": "relu2", "to": "r"},
        {"@relu2": "@r"},
    ),
}


def assert_still(before: dict[str, Any], after: dict[str, Any], renamed: dict[str, str]) -> None:
    """Every box at the same place (boxes are in graph order, which a rename keeps), each renamed one with
    its new id, and every edge on the same route."""
    assert [(b["x"], b["y"]) for b in after["nodes"]] == [(b["x"], b["y"]) for b in before["nodes"]]
    assert [renamed.get(b["id"], b["id"]) for b in before["nodes"]] == [b["id"] for b in after["nodes"]]
    assert sorted(e["pts"] for e in after["edges"]) == sorted(e["pts"] for e in before["edges"])


def renamed_session(client: TestClient, tmp_path: Path, name: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """A session on the case's model laid out once, then renamed: (id, the first layout, old id -> new id)."""
    build, rename, renamed = RENAMES[name]
    sid = upload(client, build(tmp_path / "model.onnx"))
    start = layout(client, sid)
    assert edit(client, sid, rename).status_code == 200
    return sid, start, renamed


@pytest.mark.parametrize("name", list(RENAMES))
def test_a_renamed_box_keeps_its_place_in_the_delta(client: TestClient, tmp_path: Path, name: str) -> None:
    sid, start, renamed = renamed_session(client, tmp_path, name)
    answer = layout_delta(client, sid, start["version"])
    assert not answer["full"], answer
    assert {b["id"] for b in answer["boxes"]["upserted"]} >= set(renamed.values())
    after = apply_layout_delta(start, answer, view(client, sid)["graph"])
    assert_still(start, after, renamed)
    assert client.post(f"/api/sessions/{sid}/undo").status_code == 200
    answer = layout_delta(client, sid, after["version"])
    assert not answer["full"], answer
    assert_still(start, apply_layout_delta(after, answer, view(client, sid)["graph"]), {})


@pytest.mark.parametrize("name", list(RENAMES))
def test_a_renamed_box_keeps_its_place_in_a_new_layout(client: TestClient, tmp_path: Path, name: str) -> None:
    sid, start, renamed = renamed_session(client, tmp_path, name)
    after = layout(client, sid)  # no delta asked: laid out from the view with the memory of the start
    assert after["version"] == start["version"] + 1 and after["incremental"]
    assert_still(start, after, renamed)
    assert client.post(f"/api/sessions/{sid}/undo").status_code == 200
    assert_still(start, layout(client, sid), {})
