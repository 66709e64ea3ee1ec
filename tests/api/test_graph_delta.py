"""GET /graph/delta: the delta applied to the view of the older version equals the view of the newer one,
for every edit op (and its undo and redo) on real models, and the cases where the client must read the
whole view again say so."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper

from app.graph import EDIT_OPS
from app.graph.document import JOURNAL_STEPS
from app.graph.edits import WHOLE_GRAPH_OPS
from app.view.graph_delta import apply_graph_delta

from .conftest import error_of, get_ok, upload
from .test_edits import edit

Case = tuple[str, list[dict[str, Any]], list[dict[str, Any]], str | None]

# (fixture, edits applied first, the edits under test in one request, the fallback reason or None for a delta)
CASES: dict[str, Case] = {
    "delete_node reconnect": ("ppocrv4_det", [], [{"op": "delete_node", "node": "p2o.Mul.4", "reconnect": True}], None),
    "delete_node descendants": (
        "ppocrv4_det",
        [{"op": "add_output", "tensor": "batch_norm_1.tmp_4"}],
        [{"op": "delete_node", "node": "p2o.ConvTranspose.2", "descendants": True}],
        None,
    ),
    "delete_node unnamed": (
        "minilm_l6_int8",
        [],
        [{"op": "delete_node", "node": "node_Erf_109", "reconnect": True}],
        None,
    ),
    "rename_node": ("ppocrv4_det", [], [{"op": "rename_node", "node": "p2o.Conv.0", "to": "stem"}], None),
    "rename_node of an If": ("silero_vad_v6", [], [{"op": "rename_node", "node": "If_0", "to": "branch"}], None),
    "rename_tensor": ("ppocrv4_det", [], [{"op": "rename_tensor", "tensor": "hardswish_58.tmp_0", "to": "hs"}], None),
    "set_node_input moving nodes": (
        "minilm_l6_int8",
        [],
        [{"op": "set_node_input", "node": "node_linear", "index": 0, "tensor": "val_58"}],
        None,
    ),
    "set_node_input ending a broadcast": (
        "magika_v3_3",
        [],
        [  # the shape read by 8 nodes far apart is read by 7
            {
                "op": "set_node_input",
                "node": "jax2tf_get_logits_/pjit_get_logits_/BroadcastTo_1",
                "index": 1,
                "tensor": "jax2tf_get_logits_/Shape:0",
            }
        ],
        None,
    ),
    "add_node": (
        "ppocrv4_det",
        [],
        [
            {
                "op": "add_node",
                "op_type": "Relu",
                "name": "extra",
                "inputs": ["hardswish_58.tmp_0"],
                "outputs": ["extra_out"],
            }
        ],
        None,
    ),
    "add_node custom domain": (
        "ppocrv4_det",
        [],
        [
            {
                "op": "add_node",
                "op_type": "Probe",
                "domain": "com.example",
                "inputs": ["hardswish_58.tmp_0"],
                "outputs": ["probe"],
            }
        ],
        None,
    ),
    "set_attribute": (
        "ppocrv4_det",
        [],
        [{"op": "set_attribute", "node": "p2o.Conv.0", "name": "strides", "value": [1, 1]}],
        None,
    ),
    "remove_attribute": (
        "ppocrv4_det",
        [],
        [{"op": "remove_attribute", "node": "p2o.Conv.0", "name": "dilations"}],
        None,
    ),
    "set_initializer": (
        "minilm_l6_int8",
        [],
        [{"op": "set_initializer", "name": "inner.embeddings.LayerNorm.bias", "value": [0.25] * 384}],
        None,
    ),
    "set_initializer reshape": (
        "minilm_l6_int8",
        [],
        [{"op": "set_initializer", "reshape": True, "name": "inner.embeddings.LayerNorm.bias", "value": [[0.5] * 384]}],
        None,
    ),
    "set_initializer of a Constant": (
        "ppocrv4_det",
        [],
        [{"op": "set_initializer", "name": "p2o.helper.constant.1", "value": 6.0}],
        None,
    ),
    "add_input": (
        "ppocrv4_det",
        [],
        [{"op": "add_input", "name": "mask", "dtype": "float32", "shape": [1, "k"]}],
        None,
    ),
    "remove_input": (
        "ppocrv4_det",
        [{"op": "add_input", "name": "mask", "dtype": "float32", "shape": [1, 4]}],
        [{"op": "remove_input", "name": "mask"}],
        None,
    ),
    "add_output": ("ppocrv4_det", [], [{"op": "add_output", "tensor": "hardswish_58.tmp_0"}], None),
    "remove_output": (
        "minilm_l6_int8",
        [{"op": "add_output", "tensor": "layer_norm"}],
        [{"op": "remove_output", "name": "layer_norm"}],
        None,
    ),
    "set_shape": (
        "minilm_l6_int8",
        [],
        [{"op": "set_shape", "tensor": "last_hidden_state", "shape": ["batch", "sequence", 384]}],
        None,
    ),
    "fix_dim": (
        "ppocrv4_det",
        [{"op": "add_input", "name": "extra", "dtype": "float32", "shape": ["k", 2]}],
        [{"op": "fix_dim", "dim": "k", "value": 4}],
        "too_large",
    ),  # declares all 671 shapes
    "several edits in one request": (
        "ppocrv4_det",
        [],
        [
            {"op": "rename_node", "node": "p2o.Conv.1", "to": "dw"},
            {"op": "add_node", "op_type": "Relu", "inputs": ["p2o.Add.3"], "outputs": ["relu_out"]},
            {"op": "rename_tensor", "tensor": "relu_out", "to": "relu_renamed"},
        ],
        None,
    ),
    "fix_dim of every tensor": ("minilm_l6_int8", [], [{"op": "fix_dim", "dim": "batch", "value": 1}], "too_large"),
    "set_shape making half the shapes static": (
        "ppocrv4_det",
        [],
        [{"op": "set_shape", "tensor": "x", "shape": [1, 3, 640, 640]}],
        "too_large",
    ),
    "make_static": ("ppocrv4_det", [], [{"op": "make_static", "shapes": {"x": [1, 3, 640, 640]}}], "too_large"),
    "fix_dim once every shape is declared": (
        "ppocrv4_det",
        [{"op": "infer_shapes"}, {"op": "add_input", "name": "extra", "dtype": "float32", "shape": ["k", 2]}],
        [{"op": "fix_dim", "dim": "k", "value": 4}],
        None,
    ),
    "make_static once every shape is declared": (
        "ppocrv4_det",
        [{"op": "infer_shapes"}, {"op": "add_input", "name": "extra", "dtype": "float32", "shape": ["k", 2]}],
        [{"op": "make_static", "dims": {"k": 4}}],
        None,
    ),
    "extract": (
        "ppocrv4_det",
        [],
        [{"op": "extract", "inputs": ["x"], "outputs": ["hardswish_60.tmp_0"]}],
        "whole_graph_edit",
    ),
    "cleanup": (
        "ppocrv4_det",
        [{"op": "add_node", "op_type": "Relu", "inputs": ["x"], "outputs": ["dead"]}],
        [{"op": "cleanup"}],
        "whole_graph_edit",
    ),
    "fold_constants": ("ppocrv4_det", [], [{"op": "fold_constants"}], "whole_graph_edit"),
    "constants_to_initializers": ("ppocrv4_det", [], [{"op": "constants_to_initializers"}], "whole_graph_edit"),
    "infer_shapes": ("minilm_l6_int8", [], [{"op": "infer_shapes"}], "whole_graph_edit"),
    "convert_opset": ("ppocr_cls_v2", [], [{"op": "convert_opset", "version": 13}], "whole_graph_edit"),
    "body of an If": (
        "silero_vad_v6",
        [],
        [
            {
                "op": "rename_node",
                "to": "inner",
                "node": ["If_0", "else_branch", "@If_0_else_branch__Inline_0__stft.forward_basis_buffer"],
            }
        ],
        "subgraph_changed",
    ),
}


def view(client: TestClient, sid: str) -> dict[str, Any]:
    return get_ok(client, f"/api/sessions/{sid}/graph")


def delta(client: TestClient, sid: str, since: int) -> dict[str, Any]:
    return get_ok(client, f"/api/sessions/{sid}/graph/delta", since=since)


def step_matches(client: TestClient, sid: str, before: dict[str, Any], reason: str | None) -> dict[str, Any]:
    """The delta from `before` to now: applied to it, the view of now (or the expected fallback)."""
    after = view(client, sid)
    answer = delta(client, sid, before["version"])
    assert answer["since"] == before["version"] and answer["version"] == after["version"]
    if reason is not None:
        assert answer["full"] and answer["reason"] == reason, answer
        return after
    assert not answer["full"], answer
    change, graph = answer["graph"], after["graph"]
    sent = len(change["nodes"]["upserted"]) + len(change["tensors"]["upserted"])
    assert sent <= max(64, (len(graph["nodes"]) + len(graph["tensors"])) / 4)  # a delta, not the view again
    apply_graph_delta(before, answer)
    assert before == after
    return after


def open_at(client: TestClient, open_session: Any, fixture: str, setup: list[dict[str, Any]]) -> str:
    sid = open_session(fixture)
    for e in setup:
        assert edit(client, sid, e).status_code == 200
    return sid


def test_every_edit_op_has_a_case() -> None:
    assert {e["op"] for _, _, edits, _ in CASES.values() for e in edits} == set(EDIT_OPS)
    assert {e["op"] for _, _, edits, reason in CASES.values() for e in edits if reason is None} == set(
        EDIT_OPS
    ) - WHOLE_GRAPH_OPS


@pytest.mark.parametrize("name", list(CASES))
def test_delta_of_an_edit_its_undo_and_redo(client: TestClient, open_session: Any, name: str) -> None:
    fixture, setup, edits, reason = CASES[name]
    sid = open_at(client, open_session, fixture, setup)
    before = view(client, sid)
    r = edit(client, sid, *edits)
    assert r.status_code == 200, r.text
    before = step_matches(client, sid, before, reason)
    assert client.post(f"/api/sessions/{sid}/undo").status_code == 200
    before = step_matches(client, sid, before, reason)
    assert client.post(f"/api/sessions/{sid}/redo").status_code == 200
    step_matches(client, sid, before, reason)


def test_one_delta_over_several_versions(client: TestClient, open_session: Any) -> None:
    sid = open_session("ppocrv4_det")
    start = view(client, sid)
    for e in (
        {"op": "rename_node", "node": "p2o.Conv.0", "to": "a"},
        {"op": "add_node", "op_type": "Relu", "name": "p2o.Conv.0", "inputs": ["x"], "outputs": ["r"]},
        {"op": "rename_node", "node": "a", "to": "b"},
        {"op": "delete_node", "node": "p2o.Mul.4", "reconnect": True},
    ):
        assert edit(client, sid, e).status_code == 200, e
    assert client.post(f"/api/sessions/{sid}/undo").status_code == 200
    after = step_matches(client, sid, start, None)
    ids = [n["id"] for n in after["graph"]["nodes"]]
    assert "b" in ids and "p2o.Conv.0" in ids and "p2o.Mul.4" in ids


def test_duplicated_names_flip_ids_of_untouched_nodes(client: TestClient, tmp_path: Path) -> None:
    """A node's id is its name only while no other node has it (else '@' + its first output): renaming
    one of two namesakes changes the other's id although that node was not edited."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="twin"),
        helper.make_node("Relu", ["a"], ["b"], name="twin"),
        helper.make_node("Relu", ["b"], ["y"], name="last"),
    ]
    graph = helper.make_graph(
        nodes,
        "twins",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "twins.onnx")
    sid = upload(client, tmp_path / "twins.onnx")
    before = view(client, sid)
    assert [n["id"] for n in before["graph"]["nodes"]] == ["@a", "@b", "last"]
    assert edit(client, sid, {"op": "rename_node", "node": "@a", "to": "first"}).status_code == 200
    before = step_matches(client, sid, before, None)
    assert [n["id"] for n in before["graph"]["nodes"]] == ["first", "twin", "last"]
    assert before["graph"]["tensors"]["b"]["producer"] == "twin"
    assert client.post(f"/api/sessions/{sid}/undo").status_code == 200
    before = step_matches(client, sid, before, None)
    assert [n["id"] for n in before["graph"]["nodes"]] == ["@a", "@b", "last"]
    assert edit(client, sid, {"op": "delete_node", "node": "last", "reconnect": True}).status_code == 200
    step_matches(client, sid, before, None)


def test_nodes_without_outputs_have_positions_for_ids(client: TestClient, tmp_path: Path) -> None:
    """A node with no output is '#<position>': inserting a node before it changes its id, so no delta."""
    nodes = [
        helper.make_node("Relu", ["x"], ["y"], name="r"),
        helper.make_node("Probe", ["x"], [], domain="com.example"),
    ]
    graph = helper.make_graph(
        nodes,
        "sink",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    onnx.save(model, tmp_path / "sink.onnx")
    sid = upload(client, tmp_path / "sink.onnx")
    before = view(client, sid)
    assert edit(client, sid, {"op": "rename_node", "node": "r", "to": "s"}).status_code == 200
    before = step_matches(client, sid, before, None)  # nothing moved
    assert (
        edit(client, sid, {"op": "add_node", "op_type": "Relu", "inputs": ["x"], "outputs": ["z"]}).status_code == 200
    )
    after = step_matches(client, sid, before, "positional_ids")
    assert [n["id"] for n in before["graph"]["nodes"]] == ["s", "#1"]
    assert [n["id"] for n in after["graph"]["nodes"]] == ["Relu", "s", "#2"]


def test_versions_the_server_cannot_describe(client: TestClient, open_session: Any) -> None:
    sid = open_session("logreg_iris")
    names = ["ZipMap", "z"]
    for i in range(JOURNAL_STEPS + 1):
        assert (
            edit(client, sid, {"op": "rename_node", "node": names[i % 2], "to": names[(i + 1) % 2]}).status_code == 200
        )
    now = view(client, sid)["version"]
    assert delta(client, sid, 0)["reason"] == "too_old"
    assert not delta(client, sid, 1)["full"]  # the last JOURNAL_STEPS steps are known
    assert delta(client, sid, now + 3)["reason"] == "unknown_version"
    same = delta(client, sid, now)
    assert same["format"] == "onnx-workbench/graph-delta" and (same["since"], same["version"], same["full"]) == (
        now,
        now,
        False,
    )
    empty = same["graph"]
    assert empty["nodes"] == {"removed": [], "upserted": []} and empty["tensors"]["upserted"] == {}
    error_of(client.get(f"/api/sessions/{sid}/graph/delta", params={"since": -1}), 422)
    error_of(client.get(f"/api/sessions/{sid}/graph/delta", params={"since": 2**64}), 422)
    error_of(client.get(f"/api/sessions/{sid}/graph/delta"), 422)
    error_of(client.get("/api/sessions/nosuchsessionnosuchsessionnosuchsession/graph/delta?since=0"), 404)


def test_shapes_of_the_older_version_no_longer_kept(client: TestClient, open_session: Any) -> None:
    sid = open_session("ppocrv4_det")
    start = view(client, sid)
    for k in range(4):  # each edit changes shapes, and each view infers them again
        assert (
            edit(client, sid, {"op": "add_node", "op_type": "Relu", "inputs": ["x"], "outputs": [f"r{k}"]}).status_code
            == 200
        )
        view(client, sid)
    assert delta(client, sid, start["version"])["reason"] == "shapes_unknown"
    assert not delta(client, sid, start["version"] + 3)["full"]


def test_etag_and_gzip_as_the_full_view(client: TestClient, open_session: Any) -> None:
    sid = open_session("ppocrv4_det")
    assert edit(client, sid, {"op": "rename_node", "node": "p2o.Conv.0", "to": "stem"}).status_code == 200
    url = f"/api/sessions/{sid}/graph/delta?since=0"
    r = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.headers["cache-control"] == "private, no-cache"
    assert r.json()["version"] == 1
    etag = r.headers["etag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    raw = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.json() == r.json()
    assert edit(client, sid, {"op": "rename_node", "node": "stem", "to": "stem2"}).status_code == 200
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 200 and again.json()["version"] == 2


def test_a_delta_that_does_not_fit_the_view_changes_nothing(client: TestClient, open_session: Any) -> None:
    """As the page's delta.js does: the checks come before any change, so a refused delta leaves the
    view as it was (the server's held layout then starts again from a fresh view)."""
    sid = open_session("ppocrv4_det")
    before = view(client, sid)
    assert (
        edit(
            client,
            sid,
            {"op": "rename_node", "node": "p2o.Conv.1", "to": "dw"},
            {"op": "add_input", "name": "mask", "dtype": "float32", "shape": [1, 4]},
        ).status_code
        == 200
    )
    answer = delta(client, sid, before["version"])
    after_node = next(u["after"] for u in answer["graph"]["nodes"]["upserted"] if u["after"] is not None)
    held = copy.deepcopy(before)
    held["graph"]["nodes"] = [n for n in held["graph"]["nodes"] if n["id"] != after_node]
    kept = copy.deepcopy(held)
    with pytest.raises(ValueError, match="not in the view"):
        apply_graph_delta(held, answer)
    assert held == kept
    with pytest.raises(ValueError, match="does not apply"):
        apply_graph_delta(held, {**answer, "since": answer["version"]})
    assert held == kept
    apply_graph_delta(before, answer)
    assert before == view(client, sid) and before["graph"]["inputs"] != kept["graph"]["inputs"]
