"""Odd uploads that parse as protobuf: the answer is always a 4xx with a message, never a 5xx."""

from __future__ import annotations

import onnx
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from .conftest import error_of


def _post(client: TestClient, data: bytes):
    return client.post("/api/sessions", files={"file": ("m.onnx", data)})


def test_model_without_graph_or_opset(client: TestClient) -> None:
    err = error_of(_post(client, onnx.ModelProto(ir_version=8).SerializeToString()), 422, "invalid_model_file")
    assert "no graph" in err["message"]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=512), cut=st.integers(min_value=1, max_value=400))
def test_random_and_truncated_bytes(client: TestClient, data: bytes, cut: int) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    valid = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    for body in (data, valid[:cut], valid + data):
        r = _post(client, body)
        assert r.status_code in (201, 400, 413, 422), r.text
        if r.status_code != 201:
            assert r.json()["error"]["message"]
