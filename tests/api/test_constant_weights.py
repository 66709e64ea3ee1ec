"""Weights held in Constant nodes (ppocrv4_det keeps all of them so) through the same REST routes as
initializers: download as .npy, replace from a changed .npy, histogram and statistics; the downloaded
model runs and its outputs reflect the change."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import quote

import numpy as np
import onnx
import onnxruntime as ort
from fastapi.testclient import TestClient
from onnx import numpy_helper

from .conftest import error_of, get_ok, upload
from .test_edits import state

WEIGHT = "conv2d_0.w_0"  # the first Conv's 16x3x3x3 kernel, a Constant node's value


def constant_value(path_or_model: Path | onnx.ModelProto, name: str) -> np.ndarray:
    model = onnx.load(path_or_model) if isinstance(path_or_model, Path) else path_or_model
    node = next(n for n in model.graph.node if n.output[0] == name)
    return numpy_helper.to_array(node.attribute[0].t)


def run(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_constant_weight_download_replace_and_run(client: TestClient, open_session, fixture_model) -> None:
    source = fixture_model("ppocrv4_det")
    sid = open_session("ppocrv4_det")
    url = f"/api/sessions/{sid}/tensors/{quote(WEIGHT, safe='')}.npy"
    r = client.get(url)
    assert r.status_code == 200, r.text
    weight = np.load(io.BytesIO(r.content))
    np.testing.assert_array_equal(weight, constant_value(source, WEIGHT))

    hist = get_ok(client, f"/api/sessions/{sid}/histogram/{quote(WEIGHT, safe='')}")
    assert sum(hist["counts"]) == weight.size and hist["summary"]["shape"] == [16, 3, 3, 3]
    assert abs(hist["summary"]["stats"]["max"] - float(weight.max())) < 1e-6
    view = get_ok(client, f"/api/sessions/{sid}/weight-view/{quote(WEIGHT, safe='')}")
    assert len(view["max"]) == 16

    changed = -weight
    buffer = io.BytesIO()
    np.save(buffer, changed)
    r = client.put(url, content=buffer.getvalue(), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(np.load(io.BytesIO(client.get(url).content)), changed)

    downloaded = client.get(f"/api/sessions/{sid}/model").content
    model = onnx.load_from_string(downloaded)
    np.testing.assert_array_equal(constant_value(model, WEIGHT), changed)
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    reference = onnx.load(source)
    next(n for n in reference.graph.node if n.output[0] == WEIGHT).attribute[0].t.CopyFrom(
        numpy_helper.from_array(changed, WEIGHT)
    )
    np.testing.assert_allclose(run(downloaded, x), run(reference.SerializeToString(), x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(run(downloaded, x), run(source.read_bytes(), x))


def test_unknown_weight_is_404(client: TestClient, open_session) -> None:
    sid = open_session("ppocrv4_det")
    for url in (f"/api/sessions/{sid}/tensors/x.npy", f"/api/sessions/{sid}/histogram/nope"):
        assert "no initializer or Constant node output" in error_of(client.get(url), 404, "unknown_tensor")["message"]


def test_weights_whose_range_overflows_float64_get_their_histogram(client: TestClient, tmp_path: Path) -> None:
    """max - min beyond 1.8e308 (numpy's histogram refuses it): both weight routes answer, the edges span the
    values, and the session stays at its version."""
    w = np.array([[-1.7e308, -1.0, 0.0, 1.0, 1.7e308]], dtype=np.float64)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.DOUBLE, [1, 5])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.DOUBLE, [1, 5])],
        [numpy_helper.from_array(w, "w")],
    )
    path = tmp_path / "huge.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), path)
    sid = upload(client, path)
    hist = get_ok(client, f"/api/sessions/{sid}/histogram/w")
    assert sum(hist["counts"]) == 5 and hist["edges"][0] == -1.7e308 and hist["edges"][-1] == 1.7e308
    view = get_ok(client, f"/api/sessions/{sid}/weight-view/w", axis=0)
    assert sum(view["histogram"]["counts"]) == 5 and view["min"] == [-1.7e308] and view["max"] == [1.7e308]
    assert get_ok(client, f"/api/sessions/{sid}")["version"] == 0


def test_weights_that_are_not_numbers_are_refused_and_the_session_stays(client: TestClient, tmp_path: Path) -> None:
    """The weight routes read a weight through one reader: strings get 422 on both (no_histogram, no_values),
    booleans a histogram but no channel view, and the session stays exactly as it was."""
    labels = onnx.helper.make_tensor("labels", onnx.TensorProto.STRING, [2], [b"cat", b"dog"])
    mask = numpy_helper.from_array(np.array([[True, False, True]]), "mask")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["labels"], ["y"]), onnx.helper.make_node("Identity", ["mask"], ["m"])],
        "g",
        [],
        [
            onnx.helper.make_tensor_value_info("y", onnx.TensorProto.STRING, [2]),
            onnx.helper.make_tensor_value_info("m", onnx.TensorProto.BOOL, [1, 3]),
        ],
        [labels, mask],
    )
    path = tmp_path / "words.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), path)
    sid = upload(client, path)
    before = state(client, sid)
    base = f"/api/sessions/{sid}"
    assert "holds no numbers" in error_of(client.get(f"{base}/histogram/labels"), 422, "no_histogram")["message"]
    refused = error_of(client.get(f"{base}/weight-view/labels", params={"axis": 0}), 422, "no_values")
    assert "holds no numbers" in refused["message"] and refused["details"] == {"tensor": "labels"}
    assert sum(get_ok(client, f"{base}/histogram/mask")["counts"]) == 3
    error_of(client.get(f"{base}/weight-view/mask", params={"axis": 0}), 422, "no_values")
    assert state(client, sid) == before
