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
