"""QDQ models in onnxruntime: exported at opset >= 13 so they load with default optimizations, and
QDQ_LEVEL, the optimization our own QDQ evaluation runs with: outputs as the unoptimized graph's (up to
the convolutions' summation order), where onnxruntime's default optimizations wrap a float bias or fold
constants into weights."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from app.graph import load_model
from app.quant import CONFIGS, QuantOptions, analyze
from app.quant.calibration import RandomData
from app.quant.model import input_specs, opset_version
from app.quant.runtime import QDQ_CONFIG, QDQ_LEVEL, session
from tests.quant.models import conv_net


def _run(payload: bytes, level: ort.GraphOptimizationLevel, feeds: dict[str, np.ndarray],
         config: dict[str, str] | None = None) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _qdq_level(payload: bytes, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return session(payload, QDQ_LEVEL).run(None, feeds)[0]


def test_opset_12_model_is_exported_at_13_and_loads_optimized() -> None:
    model = conv_net(opset=12, size=8)
    analysis = analyze(model, RandomData(input_specs(model), 2), QuantOptions(target="onnxruntime", end_to_end=False, per_channel_weights=True))
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    for label in ("uint8/minmax", "int16/minmax"):
        qdq = analysis.qdq_model(label)
        assert opset_version(qdq) == 13 and opset_version(analysis.model) == 12
        assert any(n.op_type == "DequantizeLinear" and n.domain == "" and any(a.name == "axis" for a in n.attribute)
                   for n in qdq.graph.node)  # per-channel weights use the standard op
        payload = qdq.SerializeToString()
        optimized = _run(payload, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, {"x": x})
        plain = _run(payload, ort.GraphOptimizationLevel.ORT_DISABLE_ALL, {"x": x})
        assert np.abs(optimized - plain).max() < 0.05 * np.abs(plain).max(), label


def _int16_conv(bias: float) -> bytes:
    """x (int16 QDQ, scale 1e-5) -> Conv with uint8 weights (scale ~1e-4) and a float bias -> int16 QDQ.

    The standard int32 bias scale is 1e-5 * 1e-4 = 1e-9: a bias of 100 needs 1e11, beyond int32.
    """
    w = (np.random.default_rng(0).standard_normal((4, 2, 1, 1)) * 0.01).astype(np.float32)
    sw = np.float32(np.abs(w).max() * 2 / 255)
    out_scale = np.float32(max(abs(bias), 1.0) * 2 / 65534)
    inits = [numpy_helper.from_array(v, n) for n, v in [
        ("sx", np.array(1e-5, np.float32)), ("zx", np.array(0, np.int16)),
        ("wq", np.clip(np.rint(w / sw) + 128, 0, 255).astype(np.uint8)), ("sw", np.array(sw)),
        ("zw", np.array(128, np.uint8)), ("b", np.full(4, bias, np.float32)),
        ("sy", np.array(out_scale)), ("zy", np.array(0, np.int16))]]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["wd"]),
             helper.make_node("Conv", ["xd", "wd", "b"], ["y"]),
             helper.make_node("QuantizeLinear", ["y", "sy", "zy"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["out"])]
    graph = helper.make_graph(nodes, "int16_conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 4, 4])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]).SerializeToString()


def test_qdq_level_keeps_the_float_bias_that_default_optimization_wraps() -> None:
    """onnxruntime's default optimizations turn a Conv's float bias into int32 at scale
    input_scale * weight_scale, and a bias beyond int32 there silently wraps around (quantizing the bias
    ourselves cannot help: it has no int32 value at that scale). QDQ_LEVEL keeps the float bias.
    If the second assertion fails, onnxruntime has fixed the wrap (QDQ_LEVEL must still pass)."""
    x = (np.random.default_rng(1).standard_normal((1, 2, 4, 4)) * 0.1).astype(np.float32)
    large = _int16_conv(100.0)
    unoptimized = _run(large, ort.GraphOptimizationLevel.ORT_DISABLE_ALL, {"x": x})
    assert abs(float(unoptimized.mean()) - 100.0) < 0.1
    assert abs(float(_run(large, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, {"x": x}).mean()) - 100.0) > 50
    assert np.allclose(_qdq_level(large, {"x": x}), unoptimized, atol=1e-3)
    small = _int16_conv(1.0)  # within int32: every path agrees exactly
    unoptimized = _run(small, ort.GraphOptimizationLevel.ORT_DISABLE_ALL, {"x": x})
    assert np.array_equal(_run(small, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, {"x": x}), unoptimized)
    assert np.allclose(_qdq_level(small, {"x": x}), unoptimized, atol=1e-3)


def test_qdq_level_matches_unoptimized_on_ppocrv4_det(fixture_model) -> None:
    """The real detector's QDQ models (default target, every configuration) measure at QDQ_LEVEL about what
    the unoptimized graph gives. NCHWc sums in another order, so a few quantizers round the other way and
    the difference grows through the layers: on random data at 160x160 the int16 model's SQNR against
    the float model moved by 0.95 dB (on photos at 640x640 by at most 0.2 dB); a wrapped bias or a wrong
    fusion moves it by tens of dB."""
    doc = load_model(fixture_model("ppocrv4_det"))
    doc.apply([{"op": "fix_dim", "dim": f"p2o.DynamicDimension.{k}", "value": v} for k, v in enumerate([1, 160, 160])])
    data = RandomData(input_specs(doc.model), 2)
    analysis = analyze(doc.model, data, QuantOptions(end_to_end=False))
    reference = doc.model.SerializeToString()
    for label in CONFIGS:
        payload = analysis.qdq_model(label).SerializeToString()
        for feeds in data.batches():
            expected = _run(reference, ort.GraphOptimizationLevel.ORT_DISABLE_ALL, feeds).astype(np.float64)
            unoptimized = _run(payload, ort.GraphOptimizationLevel.ORT_DISABLE_ALL, feeds)
            ours = _qdq_level(payload, feeds)
            sqnr = [10 * np.log10(np.sum(expected ** 2) / np.sum((expected - y) ** 2)) for y in (unoptimized, ours)]
            assert abs(sqnr[0] - sqnr[1]) < 1.5, (label, sqnr)
