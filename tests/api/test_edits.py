"""Edits over HTTP: all or nothing, optimistic versions, undo/redo, history, script, shape report."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import error_of


def state(client: TestClient, sid: str) -> tuple[int, Any, str]:
    """What must not change when a request is refused: version, history and the model's bytes."""
    version = client.get(f"/api/sessions/{sid}").json()["version"]
    history = client.get(f"/api/sessions/{sid}/history").json()
    model = hashlib.sha256(client.get(f"/api/sessions/{sid}/model").content).hexdigest()
    return version, history, model


def nodes(client: TestClient, sid: str) -> list[dict[str, Any]]:
    return client.get(f"/api/sessions/{sid}/graph").json()["graph"]["nodes"]


def edit(client: TestClient, sid: str, *edits: dict[str, Any], expected: int | None = None) -> Any:
    body: dict[str, Any] = {"edits": list(edits)}
    if expected is not None:
        body["expected_version"] = expected
    return client.post(f"/api/sessions/{sid}/edits", json=body)


def test_edit_answers_version_and_changes(client: TestClient, open_session) -> None:
    sid = open_session("ppocrv4_det")
    first = nodes(client, sid)[0]
    r = edit(client, sid, {"op": "rename_node", "node": first["id"], "to": "stem_conv"}, expected=0)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == 1 and body["applied"] == 1
    assert body["changes"]["nodes_upserted"] == ["stem_conv"]
    assert body["changes"]["nodes_removed"] == [first["id"]]
    assert nodes(client, sid)[0]["name"] == "stem_conv"


def test_stale_expected_version_is_409_and_changes_nothing(client: TestClient, open_session) -> None:
    sid = open_session("ppocrv4_det")
    first = nodes(client, sid)[0]["id"]
    assert edit(client, sid, {"op": "rename_node", "node": first, "to": "a"}, expected=0).status_code == 200
    before = state(client, sid)
    err = error_of(
        edit(client, sid, {"op": "rename_node", "node": "a", "to": "b"}, expected=0), 409, "version_conflict"
    )
    assert err["details"]["version"] == 1 and "version 1" in err["message"]
    assert state(client, sid) == before


@pytest.mark.parametrize(
    "bad, code, words",
    [
        ({"op": "delete_node", "node": "no_such_node"}, "unknown_node", "no node 'no_such_node'"),
        ({"op": "frobnicate"}, "unknown_op", "unknown edit op"),
        ({"op": "set_initializer", "name": "W", "value": [[0.5]]}, "unknown_tensor", "no initializer"),
        ({"op": "rename_node", "node": 5, "to": "x"}, "bad_field", "must be"),
    ],
)
def test_refused_edit_is_422_with_message_and_session_unchanged(
    client: TestClient, open_session, bad: dict, code: str, words: str
) -> None:
    sid = open_session("ppocr_cls_v2")
    before = state(client, sid)
    err = error_of(edit(client, sid, bad), 422, code)
    assert words in err["message"]
    assert state(client, sid) == before


def test_edit_that_would_leave_a_dangling_tensor_is_refused(client: TestClient, open_session) -> None:
    sid = open_session("ppocrv4_det")
    middle = nodes(client, sid)[10]["id"]
    before = state(client, sid)
    err = error_of(edit(client, sid, {"op": "delete_node", "node": middle}), 422, "dangling_tensor")
    assert "still read by node" in err["message"]
    assert state(client, sid) == before


def test_wrong_dtype_is_refused(client: TestClient, open_session) -> None:
    sid = open_session("minilm_l6_int8")
    graph = client.get(f"/api/sessions/{sid}/graph").json()["graph"]
    name, info = min(
        ((n, i) for n, i in graph["initializers"].items() if i["dtype"] == "int8" and len(i["shape"]) == 2),
        key=lambda item: math.prod(item[1]["shape"]),
    )
    before = state(client, sid)
    rows, cols = info["shape"]
    bad = {"op": "set_initializer", "name": name, "value": [[0.5] * cols] * rows}
    err = error_of(edit(client, sid, bad), 422, "wrong_dtype")
    assert "int8" in err["message"]
    assert state(client, sid) == before


def test_batch_is_all_or_nothing(client: TestClient, open_session) -> None:
    sid = open_session("ppocrv4_det")
    ids = [n["id"] for n in nodes(client, sid)[:2]]
    before = state(client, sid)
    err = error_of(
        edit(
            client,
            sid,
            {"op": "rename_node", "node": ids[0], "to": "ok"},
            {"op": "rename_node", "node": "missing", "to": "x"},
        ),
        422,
        "unknown_node",
    )
    assert err["details"]["edit_index"] == 1 and err["message"].startswith("edit 1")
    assert state(client, sid) == before


def test_malformed_bodies_are_422_in_the_error_shape(client: TestClient, open_session) -> None:
    sid = open_session("logreg_iris")
    error_of(client.post(f"/api/sessions/{sid}/edits", json={"edit": []}), 422, "invalid_request")
    error_of(client.post(f"/api/sessions/{sid}/edits", json={"edits": [1, 2]}), 422, "invalid_request")
    error_of(
        client.post(f"/api/sessions/{sid}/edits", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "invalid_request",
    )
    error_of(client.post(f"/api/sessions/{sid}/edits", json={"edits": [], "expected_version": "x"}), 422)


def test_undo_redo_history_and_script(client: TestClient, open_session) -> None:
    sid = open_session("ppocrv4_det")
    ids = [n["id"] for n in nodes(client, sid)[:2]]
    original = state(client, sid)[2]
    edit(client, sid, {"op": "rename_node", "node": ids[0], "to": "one"})
    edit(client, sid, {"op": "rename_node", "node": ids[1], "to": "two"})
    r = client.post(f"/api/sessions/{sid}/undo")
    assert r.status_code == 200
    assert r.json()["edit"]["to"] == "two" and r.json()["version"] == 3
    assert r.json()["changes"]["nodes_upserted"] == [ids[1]]
    history = client.get(f"/api/sessions/{sid}/history").json()
    assert [e["to"] for e in history["done"]] == ["one"] and [e["to"] for e in history["undone"]] == ["two"]
    script = client.get(f"/api/sessions/{sid}/script").json()
    assert script == {
        "format": "onnx-workbench/edits",
        "version": 1,
        "edits": [{"op": "rename_node", "node": ids[0], "to": "one"}],
    }
    error_of(client.post(f"/api/sessions/{sid}/redo?expected_version=2"), 409, "version_conflict")
    assert client.post(f"/api/sessions/{sid}/redo?expected_version=3").json()["edit"]["to"] == "two"
    error_of(client.post(f"/api/sessions/{sid}/redo"), 409, "nothing_to_redo")
    client.post(f"/api/sessions/{sid}/undo")
    client.post(f"/api/sessions/{sid}/undo")
    err = error_of(client.post(f"/api/sessions/{sid}/undo"), 409, "nothing_to_undo")
    assert "nothing to undo" in err["message"]
    assert state(client, sid)[2] == original  # undone all the way: the model bytes are the upload's again


def test_a_new_edit_clears_redo(client: TestClient, open_session) -> None:
    sid = open_session("logreg_iris")
    first = nodes(client, sid)[0]["id"]
    edit(client, sid, {"op": "rename_node", "node": first, "to": "a"})
    client.post(f"/api/sessions/{sid}/undo")
    r = edit(client, sid, {"op": "rename_node", "node": first, "to": "b"})
    assert r.status_code == 200, r.text
    assert client.get(f"/api/sessions/{sid}/history").json()["undone"] == []


def test_shapes_report_and_fix_dim(client: TestClient, open_session) -> None:
    sid = open_session("ppocrv4_det")
    report = client.get(f"/api/sessions/{sid}/shapes").json()
    assert report["all_static"] is False and report["dynamic_dims"]
    assert report["summary"] == f"{report['total'] - report['static']} of {report['total']} tensors not static"
    fixes = [{"op": "fix_dim", "dim": dim, "value": 640} for dim in report["dynamic_dims"] if dim != "?"]
    assert fixes
    assert edit(client, sid, *fixes).status_code == 200
    after = client.get(f"/api/sessions/{sid}/shapes").json()
    assert after["static"] > report["static"]


def test_edit_onnxruntime_cannot_run_is_refused_with_its_message(client: TestClient, open_session) -> None:
    sid = open_session("ppocrv4_det")
    before = state(client, sid)
    r = edit(client, sid, {"op": "set_attribute", "node": "p2o.Conv.0", "name": "kernel_shape", "value": [5, 5]})
    err = error_of(r, 422, "fails_in_onnxruntime")
    assert "kernel_shape is not compatible with W shape" in err["message"]
    assert state(client, sid) == before
