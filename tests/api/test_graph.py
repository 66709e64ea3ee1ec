"""The graph view: what the browser draws, compressed, with subgraphs and summarised weights."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from app.view.graph_view import SAMPLE_ELEMENTS

from .conftest import upload
from .models import big_tensor_model, chain_model
from .test_edits import edit


def test_view_of_a_real_model(client: TestClient, open_session) -> None:
    sid = open_session("ppocrv4_det")
    view = client.get(f"/api/sessions/{sid}/graph").json()
    assert view["version"] == 0 and view["opset"] == {"ai.onnx": 12} and view["shape_inference"]["ok"]
    graph = view["graph"]
    assert len(graph["nodes"]) == 672 and graph["inputs"] == ["x"]
    tensors = graph["tensors"]
    for node in graph["nodes"]:
        assert set(node) >= {"id", "name", "op_type", "domain", "inputs", "outputs", "attributes"}
        for out in node["outputs"]:
            assert tensors[out]["producer"] == node["id"]
        for name in node["inputs"]:
            if name:
                assert node["id"] in tensors[name]["consumers"]
    conv = next(n for n in graph["nodes"] if n["op_type"] == "Conv")
    assert isinstance(conv["attributes"]["strides"], list)
    first_out = tensors[conv["outputs"][0]]
    assert first_out["dtype"] == "float32" and len(first_out["shape"]) == 4  # from shape inference
    assert tensors["x"]["is_input"] and not tensors["x"]["is_initializer"]
    assert all(tensors[o]["is_output"] for o in graph["outputs"])


def test_initializers_are_summarised_never_sent_raw(client: TestClient, tmp_path: Path) -> None:
    sid = upload(client, big_tensor_model(tmp_path / "big.onnx"))  # 3M floats from N(2, 3), 12 MB
    r = client.get(f"/api/sessions/{sid}/graph", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert int(r.headers["content-length"]) < 4096
    info = r.json()["graph"]["initializers"]["W"]
    assert info["dtype"] == "float32" and info["shape"] == [3_000_000] and info["bytes"] >= 12_000_000
    stats = info["stats"]
    assert stats["sampled"] is True  # over 2^16 elements: 16 chunks spread over the tensor
    assert abs(stats["mean"] - 2.0) < 0.05 and abs(stats["std"] - 3.0) < 0.05
    values = np.random.default_rng(0).normal(2.0, 3.0, 3_000_000).astype(np.float32)
    assert values.min() <= stats["min"] < stats["max"] <= values.max()


def test_exact_stats_for_small_tensors(client: TestClient, open_session) -> None:
    sid = open_session("minilm_l6_int8")
    inits = client.get(f"/api/sessions/{sid}/graph").json()["graph"]["initializers"]
    with_stats = [i for i in inits.values() if i["stats"] is not None]
    small = [i for i in with_stats if math.prod(i["shape"]) <= SAMPLE_ELEMENTS]
    assert small and all(i["stats"]["sampled"] is False for i in small)
    assert all(i["stats"]["sampled"] for i in with_stats if i not in small)  # e.g. the 30522 x 384 embedding
    assert all(i["stats"]["min"] <= i["stats"]["mean"] <= i["stats"]["max"] for i in with_stats)


def test_subgraphs_are_nested_and_their_nodes_editable(client: TestClient, open_session) -> None:
    sid = open_session("silero_vad_v6")
    graph = client.get(f"/api/sessions/{sid}/graph").json()["graph"]
    owner = next(n for n in graph["nodes"] if n["op_type"] == "If")
    bodies = {b["attribute"]: b["graph"] for b in owner["subgraphs"]}
    assert set(bodies) == {"then_branch", "else_branch"}
    body = bodies["else_branch"]
    inner = body["nodes"][0]
    assert inner["ref"][:2] == [owner["id"], "else_branch"] and inner["ref"][-1] == inner["id"]
    assert body["tensors"][inner["outputs"][0]]["producer"] == inner["id"]
    r = edit(client, sid, {"op": "rename_node", "node": inner["ref"], "to": "inner_renamed"})
    assert r.status_code == 200, r.text
    assert r.json()["changes"]["nodes_upserted"] == [owner["id"]]  # the owner's body changed
    again = client.get(f"/api/sessions/{sid}/graph").json()["graph"]
    owner = next(n for n in again["nodes"] if n["op_type"] == "If")
    names = [n["name"] for b in owner["subgraphs"] for n in b["graph"]["nodes"]]
    assert "inner_renamed" in names


def test_etag_and_uncompressed_answer(client: TestClient, open_session) -> None:
    sid = open_session("logreg_iris")
    r = client.get(f"/api/sessions/{sid}/graph")
    etag = r.headers["etag"]
    assert client.get(f"/api/sessions/{sid}/graph", headers={"If-None-Match": etag}).status_code == 304
    edit(client, sid, {"op": "rename_node", "node": "ZipMap", "to": "z"})
    assert client.get(f"/api/sessions/{sid}/graph", headers={"If-None-Match": etag}).status_code == 200
    raw = client.get(f"/api/sessions/{sid}/graph", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.json()["version"] == 1


def test_twenty_thousand_nodes(client: TestClient, tmp_path: Path) -> None:
    path = chain_model(tmp_path / "chain.onnx", 20_000)
    started = time.perf_counter()
    sid = upload(client, path)
    r = client.get(f"/api/sessions/{sid}/graph", headers={"Accept-Encoding": "gzip"})
    cold = time.perf_counter() - started
    assert len(r.json()["graph"]["nodes"]) == 20_000
    assert r.headers["content-encoding"] == "gzip"
    started = time.perf_counter()
    client.get(f"/api/sessions/{sid}/graph")
    cached = time.perf_counter() - started
    edit_started = time.perf_counter()
    assert edit(client, sid, {"op": "rename_node", "node": "n100", "to": "x100"}).status_code == 200
    edit_time = time.perf_counter() - edit_started
    assert cold < 20 and cached < 2 and edit_time < 1, (cold, cached, edit_time)
