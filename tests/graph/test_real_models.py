"""The engine on real released models: the cases the issue names, and what onnx-modifier gets wrong."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from app.graph import EditError, NotFoundError, load_model, save_model, shape_report

from .builders import doc_of, run, snapshot


def test_ppocrv4_det_fixed_to_640_is_all_static_and_runs(fixture_model, tmp_path):
    doc = load_model(fixture_model("ppocrv4_det"))
    before = shape_report(doc)
    assert set(before["dynamic_dims"]) == {"p2o.DynamicDimension.0", "p2o.DynamicDimension.1", "p2o.DynamicDimension.2"}
    assert not before["all_static"]
    doc.apply(
        [
            {"op": "fix_dim", "dim": "p2o.DynamicDimension.0", "value": 1},
            {"op": "fix_dim", "dim": "p2o.DynamicDimension.1", "value": 640},
            {"op": "fix_dim", "dim": "p2o.DynamicDimension.2", "value": 640},
            {"op": "infer_shapes"},
        ]
    )
    report = shape_report(doc)
    assert report["all_static"], [k for k, v in report["tensors"].items() if v["status"] != "static"][:10]
    assert report["summary"] == f"all {report['total']} tensors static"
    assert report["dynamic_dims"] == {}
    out = tmp_path / "det_static.onnx"
    save_model(doc, out)
    saved = onnx.load(out)
    onnx.checker.check_model(saved)
    assert [d.dim_value for d in saved.graph.output[0].type.tensor_type.shape.dim] == [1, 1, 640, 640]
    result = run(out, {"x": np.random.default_rng(0).random((1, 3, 640, 640), dtype=np.float32)})
    assert next(iter(result.values())).shape == (1, 1, 640, 640)


@pytest.mark.parametrize(
    "name,edits",
    [
        ("ppocr_cls_v2", [{"op": "set_shape", "tensor": "x", "shape": [1, 3, 48, 192]}]),
        ("magika_v3_3", [{"op": "fix_dim", "dim": "unk__214", "value": 1}]),
        (
            "minilm_l6_int8",
            [{"op": "fix_dim", "dim": "batch", "value": 1}, {"op": "fix_dim", "dim": "sequence", "value": 128}],
        ),
    ],
)
def test_computed_shapes_resolve_once_inputs_are_static(fixture_model, name, edits):
    """Shape -> Gather -> Concat -> Reshape chains: onnx inference alone leaves these unresolved."""
    doc = load_model(fixture_model(name))
    doc.apply(edits)
    report = shape_report(doc)
    assert report["all_static"], [k for k, v in report["tensors"].items() if v["status"] != "static"][:10]
    assert report["data_dependent"] == []


def test_minilm_plain_inference_is_not_enough(fixture_model):
    """With batch and sequence fixed, onnx's own inference still leaves most of minilm unresolved
    (Shape -> Slice -> Range/Reshape chains); the report resolves every tensor."""
    doc = load_model(fixture_model("minilm_l6_int8"))
    doc.apply([{"op": "fix_dim", "dim": "batch", "value": 1}, {"op": "fix_dim", "dim": "sequence", "value": 128}])
    plain = onnx.ModelProto()
    plain.CopyFrom(doc.model)
    del plain.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(plain, data_prop=True)
    static = {
        v.name
        for v in list(inferred.graph.value_info) + list(inferred.graph.output)
        if v.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in v.type.tensor_type.shape.dim)
    }
    produced = [o for n in doc.model.graph.node for o in n.output]
    assert len([o for o in produced if o not in static]) > 100
    report = shape_report(doc)
    assert report["all_static"]
    assert report["tensors"]["last_hidden_state"]["shape"] == [1, 128, 384]


def test_set_attribute_keeps_ml_domain(fixture_model, tmp_path):
    doc = load_model(fixture_model("logreg_iris"))
    feeds = {"float_input": np.array([[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]], np.float32)}
    doc.apply(
        [
            {"op": "set_attribute", "node": "Normalizer", "name": "norm", "value": "L1"},
            {"op": "set_attribute", "node": "LinearClassifier", "name": "intercepts", "value": [0.0, 0.0, 0.0]},
        ]
    )
    node = doc.main.find_node("Normalizer")
    assert node.domain == "ai.onnx.ml"
    assert helper.get_attribute_value(next(a for a in node.attribute if a.name == "norm")) == b"L1"
    assert {o.domain for o in doc.model.opset_import} >= {"ai.onnx.ml"}
    out = tmp_path / "iris.onnx"
    save_model(doc, out)
    onnx.checker.check_model(onnx.load(out))
    labels = run(out, feeds)["label"]
    assert labels.shape == (3,)


def test_set_attribute_on_com_microsoft_node(tmp_path):
    """A contrib op (no onnx schema): the attribute type comes from the existing attribute, domain stays,
    and onnxruntime runs the result with the new value."""
    node = helper.make_node("FusedMatMul", ["a", "b"], ["y"], name="fmm", domain="com.microsoft", alpha=1.0)
    graph = helper.make_graph(
        [node],
        "ms",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [onnx.numpy_helper.from_array(np.ones((3, 4), np.float32), "b")],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    doc = doc_of(model, tmp_path)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    base = run(doc.model, {"a": a})["y"]
    doc.apply([{"op": "set_attribute", "node": "fmm", "name": "alpha", "value": 2}])
    changed = doc.main.find_node("fmm")
    assert changed.domain == "com.microsoft"
    assert changed.attribute[0].type == onnx.AttributeProto.FLOAT and changed.attribute[0].f == 2.0
    np.testing.assert_allclose(run(doc.model, {"a": a})["y"], 2 * base)


def test_silero_delete_with_descendants_keeps_needed_inputs(fixture_model, tmp_path):
    """onnx-modifier dropped inputs the If bodies still read; here they stay and the model runs."""
    doc = load_model(fixture_model("silero_vad_v6"))
    feeds = {
        "input": np.random.default_rng(0).standard_normal((1, 512)).astype(np.float32),
        "state": np.zeros((2, 1, 128), np.float32),
        "sr": np.array(16000, np.int64),
    }
    expected = run(doc.model, feeds)
    doc.apply([{"op": "delete_node", "node": "Introduce_0_id1", "descendants": True}])
    assert [v.name for v in doc.model.graph.input] == ["input", "state", "sr"]
    assert [v.name for v in doc.model.graph.output] == ["output"]
    out = tmp_path / "vad.onnx"
    save_model(doc, out)
    onnx.checker.check_model(onnx.load(out))
    np.testing.assert_array_equal(run(out, feeds)["output"], expected["output"])


def test_silero_body_nodes_editable(fixture_model):
    doc = load_model(fixture_model("silero_vad_v6"))
    scope, node = next((s, n) for s, n in doc.walk() if s.path and n.op_type == "Conv" and n.name)
    path = doc.node_path(scope, node)
    assert isinstance(path, list) and len(path) >= 3
    before = snapshot(doc)
    doc.apply([{"op": "rename_node", "node": path, "to": "renamed_conv"}])
    assert doc.resolve(path[:-1] + ["renamed_conv"])[1].op_type == "Conv"
    doc.undo()
    assert doc.model == before


def test_invalid_edits_leave_real_model_unchanged(fixture_model):
    doc = load_model(fixture_model("ppocrv4_det"))
    before = snapshot(doc)
    constant = next(n for n in doc.model.graph.node if n.op_type == "Constant")
    conv = next(n for n in doc.model.graph.node if n.op_type == "Conv" and n.name)
    with pytest.raises(NotFoundError, match="no node"):
        doc.apply([{"op": "delete_node", "node": "not_a_node"}])
    with pytest.raises(EditError, match="float32"):
        doc.apply([{"op": "set_initializer", "name": constant.output[0], "value": [["a"]]}])
    with pytest.raises(EditError, match="still read by node"):
        doc.apply([{"op": "delete_node", "node": conv.name}])
    assert doc.model == before


def test_unnamed_nodes_are_not_renamed_on_save(fixture_model, tmp_path):
    """onnx-modifier names 342 unnamed nodes of this model; we keep them as they are."""
    source = fixture_model("ppocrv4_det")
    doc = load_model(source)
    unnamed = sum(1 for n in doc.model.graph.node if not n.name)
    assert unnamed > 300
    save_model(doc, tmp_path / "same.onnx")
    assert onnx.load(tmp_path / "same.onnx") == onnx.load(source)


def test_fold_constants_materialises_resnet_weights(fixture_model):
    """light_resnet50 (IR 3) makes its weights with ConstantOfShape; folding turns them into initializers
    (IR 3 lists initializers as inputs, which stay constants) and keeps the outputs bit-exact."""
    doc = load_model(fixture_model("light_resnet50"))
    feeds = {"gpu_0/data_0": np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)}
    expected = run(doc.model, feeds)
    doc.apply([{"op": "fold_constants"}])
    assert not any(n.op_type == "ConstantOfShape" for n in doc.model.graph.node)
    assert {t.name for t in doc.model.graph.initializer} <= {v.name for v in doc.model.graph.input}
    onnx.checker.check_model(doc.model)
    got = run(doc.model, feeds)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value)


def test_convert_opset_without_default_domain_is_refused(fixture_model):
    doc = load_model(fixture_model("logreg_iris"))
    before = snapshot(doc)
    with pytest.raises(EditError, match="imports no default ONNX opset"):
        doc.apply([{"op": "convert_opset", "version": 17}])
    assert doc.model == before
