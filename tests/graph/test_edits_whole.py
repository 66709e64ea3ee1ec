"""Whole-graph edits: extract, cleanup, fold_constants, infer_shapes, convert_opset; shape report."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.utils
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.graph import EditError, shape_report

from .builders import chain_model, doc_of, feeds_for, run, snapshot


@pytest.fixture
def doc(tmp_path):
    return doc_of(chain_model(), tmp_path)


def test_extract_matches_onnx_extract_model(doc, tmp_path):
    onnx.utils.extract_model(str(tmp_path / "m.onnx"), str(tmp_path / "ref.onnx"), ["relu_out"], ["y"])
    reference = onnx.load(tmp_path / "ref.onnx")
    doc.apply([{"op": "extract", "inputs": ["relu_out"], "outputs": ["y"]}])
    graph = doc.model.graph
    assert [n.name for n in graph.node] == [n.name for n in reference.graph.node]
    assert [v.name for v in graph.input] == ["relu_out"] and [v.name for v in graph.output] == ["y"]
    assert sorted(t.name for t in graph.initializer) == sorted(t.name for t in reference.graph.initializer)
    feeds = {"relu_out": np.random.default_rng(1).standard_normal((1, 4, 8, 8)).astype(np.float32)}
    np.testing.assert_array_equal(run(doc.model, feeds)["y"], run(reference, feeds)["y"])


def test_extract_whole_graph_keeps_function(doc):
    feeds = feeds_for(doc.model)
    expected = run(doc.model, feeds)
    doc.apply([{"op": "extract", "inputs": ["x"], "outputs": ["y", "z"]}])
    got = run(doc.model, feeds)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])


def test_extract_open_boundary_refused(doc):
    before = snapshot(doc)
    with pytest.raises(EditError, match="depends on 'x'.*add it to 'inputs'"):
        doc.apply([{"op": "extract", "inputs": ["relu_out"], "outputs": ["y", "z"]}])
    assert doc.model == before


def test_cleanup_drops_dead_nodes(doc):
    feeds = feeds_for(doc.model)
    doc.apply(
        [
            {"op": "add_node", "op_type": "Neg", "name": "dead", "inputs": ["relu_out"], "outputs": ["n"]},
            {"op": "remove_output", "name": "z"},
        ]
    )
    doc.apply([{"op": "cleanup"}])
    assert [n.name for n in doc.model.graph.node] == ["conv", "relu", "ident", "add"]
    np.testing.assert_array_equal(run(doc.model, feeds)["y"], run(chain_model(), feeds)["y"])


def shape_chain_model() -> onnx.ModelProto:
    """x[N,4,8] -> Shape -> Gather(0) -> Concat([-1 placeholder]) -> Reshape: a shape computed in-graph."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "i0"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "tail"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"], name="reshape"),
        helper.make_node("Add", ["c1", "c2"], ["c3"], name="const_add"),
        helper.make_node("Mul", ["r", "c3"], ["y"], name="mul"),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "i0"),
        numpy_helper.from_array(np.array([0], np.int64), "ax"),
        numpy_helper.from_array(np.array([32], np.int64), "tail"),
        numpy_helper.from_array(np.array([2.0], np.float32), "c1"),
        numpy_helper.from_array(np.array([3.0], np.float32), "c2"),
    ]
    graph = helper.make_graph(
        nodes,
        "shapes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_shape_report_resolves_computed_shapes(tmp_path):
    doc = doc_of(shape_chain_model(), tmp_path)
    report = shape_report(doc)
    assert report["dynamic_dims"] == {"N": [{"tensor": "x", "axis": 0}]}
    assert report["tensors"]["x"]["status"] == "symbolic" and report["tensors"]["x"]["dims"] == ["N"]
    assert not report["all_static"]
    doc.apply([{"op": "fix_dim", "dim": "N", "value": 2}])
    report = shape_report(doc)
    assert report["summary"] == "all 8 tensors static"
    assert report["tensors"]["r"]["shape"] == [2, 32]
    assert report["data_dependent"] == [] and report["suggested_cut"] is None


def test_fold_constants_and_infer_shapes_keep_function(tmp_path):
    doc = doc_of(shape_chain_model(), tmp_path)
    doc.apply([{"op": "fix_dim", "dim": "N", "value": 2}])
    feeds = feeds_for(doc.model)
    expected = run(doc.model, feeds)["y"]
    doc.apply([{"op": "fold_constants"}])
    assert [n.op_type for n in doc.model.graph.node] == ["Reshape", "Mul"]
    np.testing.assert_array_equal(run(doc.model, feeds)["y"], expected)
    doc.apply([{"op": "infer_shapes"}])
    assert doc.model.graph.output[0].type == helper.make_tensor_type_proto(TensorProto.FLOAT, [2, 32])
    assert [v.name for v in doc.model.graph.value_info] == ["r"]
    doc.undo()
    doc.undo()
    assert [n.name for n in doc.model.graph.node][0] == "shape"


def test_data_dependent_nodes_and_suggested_cut(tmp_path):
    """A detector tail: scores -> TopK with k from NonZero count -> boxes; cut before it."""
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["feat"], name="head"),
        helper.make_node("Sigmoid", ["feat"], ["scores"], name="sig"),
        helper.make_node("Flatten", ["scores"], ["flat"], name="flatten", axis=0),
        helper.make_node("Greater", ["flat", "thr"], ["mask"], name="gt"),
        helper.make_node("NonZero", ["mask"], ["idx"], name="nonzero"),
        helper.make_node("Shape", ["idx"], ["idx_shape"], name="count"),
        helper.make_node("Slice", ["idx_shape", "one", "two"], ["k"], name="k"),
        helper.make_node("TopK", ["flat", "k"], ["top", "top_i"], name="topk", axis=1),
    ]
    inits = [
        numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "W"),
        numpy_helper.from_array(np.array(0.5, np.float32), "thr"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array([2], np.int64), "two"),
    ]
    graph = helper.make_graph(
        nodes,
        "det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("top", TensorProto.FLOAT, None)],
        inits,
    )
    doc = doc_of(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path)
    report = shape_report(doc)
    flagged = {d["node"]: d["reason"] for d in report["data_dependent"]}
    assert "nonzero" in flagged and "topk" in flagged
    cut = report["suggested_cut"]
    # the post-processing tail (TopK, and the scoring that feeds only it) goes: the cut keeps the head Conv
    assert cut["outputs"] == ["feat"] and cut == report["post_processing"]
    doc.apply([cut["edit"]])
    assert shape_report(doc)["all_static"]
    assert run(doc.model, feeds_for(doc.model))["feat"].shape == (1, 2, 4, 4)


def test_convert_opset_keeps_function(tmp_path):
    model = chain_model()
    model.opset_import[0].version = 13
    doc = doc_of(model, tmp_path)
    feeds = feeds_for(doc.model)
    expected = run(doc.model, feeds)
    doc.apply([{"op": "convert_opset", "version": 18}])
    assert doc.opset_version("") == 18
    got = run(doc.model, feeds)
    np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-6)
    doc.undo()
    assert doc.model == model
    with pytest.raises(EditError, match="outside what onnx supports"):
        doc.apply([{"op": "convert_opset", "version": 99}])


def test_subgraph_nodes_are_addressable(tmp_path):
    then = helper.make_graph(
        [helper.make_node("LeakyRelu", ["x"], ["a"], name="inner", alpha=0.1)],
        "then",
        [],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])],
    )
    other = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["b"], name="neg")],
        "else",
        [],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], name="if", then_branch=then, else_branch=other)],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    doc = doc_of(model, tmp_path)
    doc.apply(
        [
            {"op": "set_attribute", "node": ["if", "then_branch", "inner"], "name": "alpha", "value": 0.5},
            {"op": "rename_node", "node": ["if", "else_branch", "neg"], "to": "negate"},
        ]
    )
    x = np.array([-2.0, 2.0], np.float32)
    np.testing.assert_allclose(run(doc.model, {"x": x, "c": np.array(True)})["y"], [-1.0, 2.0])
    scope, node = doc.resolve(["if", "else_branch", "negate"])
    assert doc.node_path(scope, node) == ["if", "else_branch", "negate"]
    with pytest.raises(EditError, match="no subgraph 'body'"):
        doc.apply([{"op": "rename_node", "node": ["if", "body", "negate"], "to": "q"}])
    doc.undo()
    doc.undo()
    assert doc.model == model
