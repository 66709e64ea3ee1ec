"""Saving choices the service relies on: snapshots that reuse external data, -1 dims read as unknown."""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper

from app.graph import load_model, save_model
from app.graph.summary import model_summary

from .builders import matmul_model, run


def test_reuse_external_writes_no_weights(tmp_path):
    weight = np.random.default_rng(0).standard_normal((128, 128)).astype(np.float32)
    src = tmp_path / "src"
    src.mkdir()
    onnx.save_model(
        matmul_model(weight), src / "m.onnx", save_as_external_data=True, location="w.bin", size_threshold=0
    )
    doc = load_model(src / "m.onnx")
    doc.apply([{"op": "rename_node", "node": "mm", "to": "matmul"}])
    snap = tmp_path / "snap"
    snap.mkdir()
    os.link(src / "w.bin", snap / "w.bin")  # the service hard-links data files into a snapshot
    written = save_model(doc, snap / "s.onnx", reuse_external=True)
    assert [p.name for p in written] == ["s.onnx", "s.onnx.data"]
    assert (snap / "s.onnx.data").stat().st_size == 0  # no weight copied
    x = np.ones((1, 128), np.float32)
    np.testing.assert_allclose(run(snap / "s.onnx", {"x": x})["y"], x @ weight, rtol=1e-4, atol=1e-4)


def test_minus_one_dims_read_as_unknown(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 3])],
    )
    onnx.save_model(helper.make_model(graph), tmp_path / "m.onnx")
    summary = model_summary(load_model(tmp_path / "m.onnx"))
    assert summary["inputs"][0]["shape"] == [None, 3]
