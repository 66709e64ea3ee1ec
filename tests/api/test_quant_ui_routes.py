"""The editor's derived quantization route: a weight's histogram and per-channel ranges."""

from __future__ import annotations

from urllib.parse import quote

import numpy as np
import onnx
from onnx import numpy_helper

from .conftest import error_of


def test_weight_channels_match_the_initializer(client, open_session, fixture_model) -> None:
    sid = open_session("ppocrv4_det")
    model = onnx.load(str(fixture_model("ppocrv4_det")))
    node = next(n for n in model.graph.node if n.op_type == "Constant" and len(n.attribute[0].t.dims) == 4)
    name, w = node.output[0], numpy_helper.to_array(node.attribute[0].t)
    r = client.get(f"/api/sessions/{sid}/weight-view/{quote(name, safe='')}?axis=0")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["axis"] == 0 and body["shape"] == list(w.shape)
    rows = w.reshape(w.shape[0], -1)
    np.testing.assert_allclose(body["min"], rows.min(axis=1), rtol=1e-6)
    np.testing.assert_allclose(body["max"], rows.max(axis=1), rtol=1e-6)
    assert sum(body["histogram"]["counts"]) == w.size
    assert body["histogram"]["edges"][0] == w.min() and np.isclose(body["histogram"]["edges"][-1], w.max())
    r = client.get(f"/api/sessions/{sid}/weight-view/{quote(name, safe='')}?axis=-3")
    assert r.json()["axis"] == 1 and len(r.json()["min"]) == w.shape[1]


def test_weight_view_of_an_initializer(client, open_session, fixture_model) -> None:
    sid = open_session("minilm_l6_int8")
    model = onnx.load(str(fixture_model("minilm_l6_int8")))
    init = next(t for t in model.graph.initializer if len(t.dims) == 2 and t.data_type == onnx.TensorProto.FLOAT)
    w = numpy_helper.to_array(init)
    body = client.get(f"/api/sessions/{sid}/weight-view/{quote(init.name, safe='')}?axis=1").json()
    np.testing.assert_allclose(body["max"], w.max(axis=0), rtol=1e-6)


def test_weight_channels_errors(client, open_session) -> None:
    sid = open_session("ppocrv4_det")
    error_of(client.get(f"/api/sessions/{sid}/weight-view/nope?axis=0"), 404, "unknown_tensor")
    error_of(client.get(f"/api/sessions/{sid}/weight-view/conv2d_0.w_0?axis=7"), 422, "bad_axis")
    error_of(client.get(f"/api/sessions/{sid}/weight-view/x?axis=0"), 404, "unknown_tensor")  # an input, no values
    error_of(client.get("/api/sessions/doesnotexist123/weight-view/w?axis=0"), 404)
