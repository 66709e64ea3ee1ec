"""Toolkit layers: Conv+BN+activation fused, HardSwish chains whole, data movement passes through."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from app.quant import QuantOptions, analyze, build_report
from app.quant.analysis import quantizable_points
from app.quant.calibration import RandomData
from app.quant.fold import fold_layers
from app.quant.layers import PASS_THROUGH, node_names
from app.quant.model import constant_values, input_specs, weight_layers, weight_tensors
from app.quant.stats import augmented_model
from tests.quant.models import conv_net, picodet_like


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


def _check_no_point_inside_a_layer(model: onnx.ModelProto, target: str) -> list:
    points = quantizable_points(model, target)
    names = {p.name for p in points}
    producers = _producers(model)
    member = {}
    for p in points:
        for n in p.nodes:
            assert n not in member, f"node {n} in two layers"
            member[n] = p.name
    by_name = dict(zip(node_names(list(model.graph.node)), model.graph.node, strict=True))
    for node_name, node in by_name.items():
        if node.op_type == "BatchNormalization" and node.input[0] in producers:
            conv = producers[node.input[0]]
            if conv.op_type == "Conv":
                assert node.input[0] not in names, "a point between a Conv and its BatchNormalization"
                assert member[node_name] == member[conv.name]
        if node.op_type in PASS_THROUGH:
            assert not set(node.output) & names, f"a point on data movement {node_name}"
            assert node_name not in member
    return points


def test_picodet_like_layers() -> None:
    model = picodet_like()
    points = _check_no_point_inside_a_layer(model, "acuity")
    conv_count = sum(n.op_type == "Conv" for n in model.graph.node)
    # the input, one layer per Conv, the residual Add (+Relu), the Sigmoid head
    assert len(points) == 1 + conv_count + 1 + 1 == 12
    layers = {p.name: p.nodes for p in points}
    assert layers["hs1.div"] == ("conv1", "bn1", "hs1.add", "hs1.clip", "hs1.mul", "hs1.div")
    assert layers["hs3.mul"] == ("conv3", "bn3", "hs3.add", "hs3.clip", "hs3.div", "hs3.mul")  # /6 first
    assert layers["swish.mul"] == ("conv4", "swish.sigmoid", "swish.mul")
    assert layers["hsig"] == ("conv6", "scale6.mul", "shift6.add", "hsig")  # scale-and-shift folded
    assert layers["residual.relu"] == ("residual", "residual.relu")
    assert {layers[k][-1] for k in ("leaky", "prelu", "relu6", "y")} == {"leaky", "prelu", "relu6", "y"}
    inside = {"conv1", "bn1", "hs1.add", "hs1.clip", "hs1.mul", "hs3.add", "hs3.clip", "hs3.div", "c6", "scale6.mul"}
    assert not inside & set(layers)  # no point inside a layer: after a Conv, its BN, in a HardSwish chain
    # onnxruntime quantizes every tensor but a Relu/Clip's input: about three times as many points
    assert len(quantizable_points(model, "onnxruntime")) == 38


def test_weights_follow_their_fused_layer() -> None:
    model = picodet_like()
    points = quantizable_points(model, "acuity")
    weights = weight_tensors(model, constant_values(model))
    layers = weight_layers(weights, points)
    assert layers["conv1.w"] == {"hs1.div"} and layers["conv6.w"] == {"hsig"}
    small = conv_net()
    unfused = weight_layers(weight_tensors(small, constant_values(small)), quantizable_points(small, "onnxruntime"))
    assert unfused == {"w1": {"r1"}, "w2": {"c2"}, "w3": {"c3"}, "w4": {"r4"}, "w5": {"y"}}


def test_ppocrv4_det_layers(fixture_model) -> None:
    """PP-OCRv4 det (a Paddle export): Conv -> Mul/Add (MobileOne's scale-and-shift) -> HardSwish chain is
    one layer, the post-activation scale-and-shift one more, Resize/Concat pass through."""
    model = onnx.load(fixture_model("ppocrv4_det"))
    points = _check_no_point_inside_a_layer(model, "acuity")
    ops = Counter(n.op_type for n in model.graph.node)
    by_name = dict(zip(node_names(list(model.graph.node)), model.graph.node, strict=True))
    heads = Counter(by_name[p.nodes[0]].op_type for p in points if p.nodes)
    assert heads["Conv"] + heads["ConvTranspose"] == ops["Conv"] + ops["ConvTranspose"]  # one layer per conv
    for op in ("Clip", "Div", "HardSigmoid", "Relu", "BatchNormalization"):  # all fused into a layer
        assert heads[op] == 0 and sum(by_name[n].op_type == op for p in points for n in p.nodes) == ops[op]
    assert heads["GlobalAveragePool"] == ops["GlobalAveragePool"] and heads["Sigmoid"] == ops["Sigmoid"]
    assert not {o for n in model.graph.node if n.op_type in ("Resize", "Concat") for o in n.output} & {
        p.name for p in points
    }
    # 64 convs, 24 post-HardSwish scale-and-shift layers, 11 residual Adds, 10 SE gates (Mul), 10
    # GlobalAveragePool, 1 Sigmoid and the input: 121 layers, where onnxruntime has 295 points
    assert (heads["Mul"], heads["Add"]) == (24 + 10, 11)
    assert len(points) == 121 and len(quantizable_points(model, "onnxruntime")) == 295


def test_analysis_reports_each_points_layer() -> None:
    model = picodet_like(size=16)
    analysis = analyze(model, RandomData(input_specs(model), 2), QuantOptions(end_to_end=False))
    report = build_report(analysis, histograms=False)
    assert len(report["tensors"]) == 12 and report["toolkit"]["fuses_layers"] is True
    entry = report["tensors"]["hs2.div"]
    assert entry["layer"] == ["conv2", "bn2", "hs2.add", "hs2.clip", "hs2.mul", "hs2.div"]
    assert entry["op_type"] == "Conv" and entry["node"] == "hs2.div"


def test_folding_keeps_the_float_function(fixture_model) -> None:
    """BN and constant scale-and-shift folded into the convolutions compute the same in float."""
    for model, shape in ((picodet_like(), [1, 3, 32, 32]), (onnx.load(fixture_model("ppocrv4_det")), [1, 3, 64, 64])):
        points = quantizable_points(model, "acuity")
        folded, changed = fold_layers(model, points, constant_values(model))
        assert changed and len(folded.graph.node) < len(model.graph.node)
        assert not any(n.op_type == "BatchNormalization" for n in folded.graph.node)
        names = [p.name for p in points if p.nodes]
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        before = _tensors(model, names, x)
        after = _tensors(folded, names, x)
        for name in names:
            scale = float(np.abs(before[name]).max()) or 1.0
            assert float(np.abs(before[name] - after[name]).max()) <= 1e-4 * scale + 1e-6, name


def _tensors(model: onnx.ModelProto, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(augmented_model(model, names), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {model.graph.input[0].name: x}), strict=True))


def test_picodet_layout_layers(fixture_model) -> None:
    """The real PicoDet (PaddleDetection, 102 Conv, 94 BatchNormalization, 94 HardSwish chains): 524
    quantization points for onnxruntime, 112 toolkit layers: the input, one per Conv (94 of them
    Conv+BN+HardSwish), 4 Sigmoid heads, 2 SE blocks (GlobalAveragePool, gate Mul) and 1 residual Add."""
    try:
        path = fixture_model("picodet_layout")
    except KeyError:
        pytest.skip("the picodet_layout fixture arrives with main's tests/fixture_models.py")
    model = onnx.load(path)
    points = _check_no_point_inside_a_layer(model, "acuity")
    ops = Counter(n.op_type for n in model.graph.node)
    by_name = dict(zip(node_names(list(model.graph.node)), model.graph.node, strict=True))
    shapes = Counter(tuple(by_name[n].op_type for n in p.nodes) for p in points)
    assert shapes[("Conv", "BatchNormalization", "Add", "Clip", "Mul", "Div")] == ops["BatchNormalization"] == 94
    heads = Counter(by_name[p.nodes[0]].op_type for p in points if p.nodes)
    assert heads["Conv"] == ops["Conv"] == 102
    assert (heads["Sigmoid"], heads["GlobalAveragePool"], heads["Mul"], heads["Add"]) == (4, 2, 2, 1)
    assert len(points) == 1 + 102 + 4 + 2 + 2 + 1 == 112
    assert len(quantizable_points(model, "onnxruntime")) == 524
