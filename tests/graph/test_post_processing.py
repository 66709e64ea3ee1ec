"""Detectors' post-processing (TopK with a constant k, NonMaxSuppression) is found whatever its shapes,
and the suggested cut keeps the network's outputs exactly as the original model computes them."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from app.graph import shape_report

from .builders import detector_with_tail, doc_of, run


@pytest.mark.parametrize("kind, anchor", [("topk", "TopK"), ("nms", "NonMaxSuppression")])
def test_cut_before_post_processing_keeps_the_head_outputs(tmp_path, kind, anchor):
    model = detector_with_tail(kind)
    doc = doc_of(model, tmp_path)
    found = shape_report(doc)["post_processing"]
    assert [a["op_type"] for a in found["anchors"]] == [anchor]
    # the decoding and the shape computations in front of the anchor belong to the tail; the head Convs do not
    assert {"/post/Split", "/post/decode/Div", "/head/Concat_all", "/head/Sigmoid"} <= set(found["nodes"])
    assert found["outputs"] == ["h0.out", "h1.out"]
    doc.apply([found["edit"]])
    assert not {n.op_type for n in doc.model.graph.node} & {"TopK", "NonMaxSuppression", "Split", "Reshape"}
    assert [o.name for o in doc.model.graph.output] == ["h0.out", "h1.out"]

    feeds = {"images": np.random.default_rng(0).standard_normal((1, 3, 320, 320)).astype(np.float32)}
    original = onnx.ModelProto()
    original.CopyFrom(model)
    original.graph.output.extend([onnx.helper.make_empty_tensor_value_info(t) for t in found["outputs"]])
    want = run(original, feeds)
    got = run(doc.model, feeds)
    for name in found["outputs"]:
        np.testing.assert_array_equal(got[name], want[name])
    assert shape_report(doc)["post_processing"] is None


def test_no_post_processing_no_cut(tmp_path):
    from .builders import yolo_like_model

    assert shape_report(doc_of(yolo_like_model(), tmp_path))["post_processing"] is None


def test_real_detector_without_post_processing(fixture_model):
    from app.graph import load_model

    assert shape_report(load_model(fixture_model("ppocrv4_det")))["post_processing"] is None


@pytest.mark.parametrize("name", ["yolo_dyn", "yolo_topk"])
def test_torch_exported_yolo_cut_keeps_the_six_head_convolutions(tmp_path, name):
    """Anchor-free heads: the DFL projection (a Conv with weights 0..15) and the box decoding are
    post-processing even without a TopK; the cut keeps each scale's box and class convolutions."""
    from pathlib import Path

    from app.graph import load_model

    path = Path(__file__).resolve().parents[1] / "data" / "yolo" / f"{name}.onnx"
    doc = load_model(path)
    found = shape_report(doc)["post_processing"]
    assert found["anchors"][0]["node"] == "/dfl/conv/Conv"
    assert found["outputs"] == [f"/cv{k}.{i}/Conv_output_0" for i in range(3) for k in (2, 3)]
    doc.apply([found["edit"]])
    assert {n.op_type for n in doc.model.graph.node} >= {"Conv"} and "TopK" not in {
        n.op_type for n in doc.model.graph.node
    }
    feeds = {"images": np.random.default_rng(0).standard_normal((1, 3, 256, 320)).astype(np.float32)}
    original = onnx.load(path)
    original.graph.output.extend([onnx.helper.make_empty_tensor_value_info(t) for t in found["outputs"]])
    want, got = run(original, feeds), run(doc.model, feeds)
    for name_ in found["outputs"]:
        np.testing.assert_array_equal(got[name_], want[name_])


def test_picodet_export_without_post_processing_gets_no_cut(fixture_model):
    """PaddleDetection's PicoDet layout export ends at its head outputs (class scores, box distributions):
    nothing to cut, although it has 878 Constant nodes and Concat/Transpose around its heads."""
    from app.graph import load_model

    report = shape_report(load_model(fixture_model("picodet_layout")))
    assert report["post_processing"] is None and report["all_static"]
