"""Edits that onnx's checker and shape inference accept but onnxruntime cannot run are refused with
onnxruntime's message, and the model is left exactly as it was."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.graph import EditError, load_model

from .builders import doc_of, snapshot


def small_model() -> onnx.ModelProto:
    """a[4,8] -> Gemm(G[8,6]) -> Reshape([2,12]) -> Softmax; Concat(g, row[1,6]) -> Gather -> Flatten."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 6)).astype(np.float32), "G"),
        numpy_helper.from_array(np.array([2, 12], np.int64), "shape"),
        numpy_helper.from_array(np.array([4, 6], np.int64), "other_shape"),
        numpy_helper.from_array(np.array([0], np.int64), "idx"),
        numpy_helper.from_array(rng.standard_normal((1, 6)).astype(np.float32), "row"),
        numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "flat_row"),
    ]
    nodes = [
        helper.make_node("Gemm", ["a", "G"], ["g"], name="gemm"),
        helper.make_node("Reshape", ["g", "shape"], ["r"], name="reshape"),
        helper.make_node("Softmax", ["r"], ["s"], name="softmax", axis=1),
        helper.make_node("Concat", ["g", "row"], ["c"], name="concat", axis=0),
        helper.make_node("Gather", ["c", "idx"], ["gt"], name="gather", axis=0),
        helper.make_node("Flatten", ["gt"], ["f"], name="flat", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "m",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [4, 8])],
        [
            helper.make_tensor_value_info("s", TensorProto.FLOAT, [2, 12]),
            helper.make_tensor_value_info("f", TensorProto.FLOAT, [1, 6]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"op": "set_attribute", "node": "softmax", "name": "axis", "value": 3}, "'axis' must be in [-2 , 1]"),
        ({"op": "set_attribute", "node": "gather", "name": "axis", "value": 2}, "axis must be in [-r, r-1]"),
        (
            {"op": "set_initializer", "name": "shape", "value": [5, 5]},
            "The input tensor cannot be reshaped to the requested shape. Input shape:{4,6}, requested shape:{5,5}",
        ),
        ({"op": "set_node_input", "node": "concat", "index": 1, "tensor": "flat_row"}, "Concat"),
        ({"op": "set_attribute", "node": "gemm", "name": "transB", "value": 1}, "Dimension mismatch"),
        (
            {"op": "set_initializer", "name": "G", "value": np.zeros((6, 8)).tolist(), "reshape": True},
            "Dimension mismatch",
        ),
    ],
)
def test_edit_that_onnxruntime_cannot_run_is_refused(tmp_path, edit, message):
    doc = doc_of(small_model(), tmp_path)
    before = snapshot(doc)
    with pytest.raises(EditError) as err:
        doc.apply([edit])
    assert err.value.code == "fails_in_onnxruntime", err.value.message
    assert "would fail in onnxruntime: " in err.value.message and message in err.value.message
    assert doc.model == before and doc.version == 0


@pytest.mark.parametrize(
    "edit",
    [
        {"op": "set_node_input", "node": "reshape", "index": 1, "tensor": "other_shape"},
        {"op": "set_attribute", "node": "softmax", "name": "axis", "value": -1},
        {"op": "set_initializer", "name": "G", "value": np.ones((8, 6)).tolist()},
        {"op": "add_node", "op_type": "Relu", "inputs": ["g"], "outputs": ["relu"]},
    ],
)
def test_edits_that_run_are_accepted(tmp_path, edit):
    doc = doc_of(small_model(), tmp_path)
    doc.apply([edit])
    assert doc.version == 1


def test_conv_kernel_shape_that_does_not_match_its_weight_is_refused(fixture_model):
    """The issue's case: ppocrv4_det's first Conv has a 16x3x3x3 weight (a Constant node)."""
    doc = load_model(fixture_model("ppocrv4_det"))
    before = snapshot(doc)
    with pytest.raises(EditError, match=r"kernel_shape is not compatible with W shape"):
        doc.apply([{"op": "set_attribute", "node": "p2o.Conv.0", "name": "kernel_shape", "value": [5, 5]}])
    assert doc.model == before
    doc.apply([{"op": "set_attribute", "node": "p2o.Conv.0", "name": "strides", "value": [1, 1]}])
    assert doc.version == 1
