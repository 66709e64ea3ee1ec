"""QDQ models in onnxruntime: exported at opset >= 13 so they load with default optimizations, and
QDQ_LEVEL, the optimization our own QDQ evaluation runs with: outputs equal to the unoptimized graph's,
where onnxruntime's default optimizations wrap a float bias, fold constants into weights or change the
convolutions' summation order."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from app.graph import load_model
from app.quant import CONFIGS, QuantOptions, analyze
from app.quant.calibration import RandomData
from app.quant.model import input_specs, opset_version
from app.quant.runtime import session
from app.runtime.session import QDQ_CONFIG, QDQ_LEVEL
from tests.quant.models import conv_net


def _run(
    payload: bytes,
    level: ort.GraphOptimizationLevel,
    feeds: dict[str, np.ndarray],
    config: dict[str, str] | None = None,
) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _qdq_level(payload: bytes, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return session(payload, QDQ_LEVEL).run(None, feeds)[0]


def test_opset_12_model_is_exported_at_13_and_loads_optimized() -> None:
    model = conv_net(opset=12, size=8)
    analysis = analyze(
        model,
        RandomData(input_specs(model), 2),
        QuantOptions(target="onnxruntime", end_to_end=False, per_channel_weights=True),
    )
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    for label in ("uint8/minmax", "int16/minmax"):
        qdq = analysis.qdq_model(label)
        assert opset_version(qdq) == 13 and opset_version(analysis.model) == 12
        assert any(
            n.op_type == "DequantizeLinear" and n.domain == "" and any(a.name == "axis" for a in n.attribute)
            for n in qdq.graph.node
        )  # per-channel weights use the standard op
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
    inits = [
        numpy_helper.from_array(v, n)
        for n, v in [
            ("sx", np.array(1e-5, np.float32)),
            ("zx", np.array(0, np.int16)),
            ("wq", np.clip(np.rint(w / sw) + 128, 0, 255).astype(np.uint8)),
            ("sw", np.array(sw)),
            ("zw", np.array(128, np.uint8)),
            ("b", np.full(4, bias, np.float32)),
            ("sy", np.array(out_scale)),
            ("zy", np.array(0, np.int16)),
        ]
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["wd"]),
        helper.make_node("Conv", ["xd", "wd", "b"], ["y"]),
        helper.make_node("QuantizeLinear", ["y", "sy", "zy"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "int16_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 4, 4])],
        inits,
    )
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
    assert np.array_equal(_qdq_level(large, {"x": x}), unoptimized)
    small = _int16_conv(1.0)  # within int32: every path agrees exactly
    unoptimized = _run(small, ort.GraphOptimizationLevel.ORT_DISABLE_ALL, {"x": x})
    assert np.array_equal(_run(small, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, {"x": x}), unoptimized)
    assert np.array_equal(_qdq_level(small, {"x": x}), unoptimized)


def test_qdq_level_folds_no_constant_into_conv_weights() -> None:
    """int16 QDQ input -> Conv with uint8 weights -> per-channel Mul and Add (a layer the toolkit fuses,
    so no quantizer between them). Once the weights' DequantizeLinear is folded, onnxruntime's
    ConvMulFusion and ConvAddFusion fold the constants into the weights and bias: the same formula, other
    float rounding. QDQ_LEVEL turns them off (QDQ_DISABLED), so its outputs are bit for bit unoptimized."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((8, 4, 3, 3)) * 0.2).astype(np.float32)
    sw = np.float32(np.abs(w).max() * 2 / 255)
    inits = [
        numpy_helper.from_array(v, n)
        for n, v in [
            ("sx", np.array(1e-4, np.float32)),
            ("zx", np.array(0, np.int16)),
            ("wq", np.clip(np.rint(w / sw) + 128, 0, 255).astype(np.uint8)),
            ("sw", np.array(sw)),
            ("zw", np.array(128, np.uint8)),
            ("b", (rng.standard_normal(8) * 0.1).astype(np.float32)),
            ("m", rng.uniform(0.3, 3, (1, 8, 1, 1)).astype(np.float32)),
            ("a", rng.standard_normal((1, 8, 1, 1)).astype(np.float32)),
        ]
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"], domain="com.microsoft"),
        helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"], domain="com.microsoft"),
        helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["wd"]),
        helper.make_node("Conv", ["xd", "wd", "b"], ["c"], pads=[1] * 4),
        helper.make_node("Mul", ["c", "m"], ["cm"]),
        helper.make_node("Add", ["cm", "a"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_scale_shift",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])],
        inits,
    )
    payload = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]
    ).SerializeToString()
    feeds = {"x": rng.standard_normal((1, 4, 16, 16)).astype(np.float32)}
    unoptimized = _run(payload, ort.GraphOptimizationLevel.ORT_DISABLE_ALL, feeds)
    folded = _run(payload, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, feeds, QDQ_CONFIG)
    assert not np.array_equal(folded, unoptimized) and np.allclose(folded, unoptimized, atol=1e-4)
    assert np.array_equal(_qdq_level(payload, feeds), unoptimized)


def test_qdq_level_matches_unoptimized_on_ppocrv4_det(fixture_model) -> None:
    """The real detector's QDQ models (default target, every configuration) give the unoptimized outputs
    bit for bit at QDQ_LEVEL. Level "all" with the same QDQ settings does not on the int16 model: its
    NCHWc convolutions sum in another order, a few quantizers round the other way and the difference
    grows through the layers, so this model catches an optimizer that changes the numbers."""
    doc = load_model(fixture_model("ppocrv4_det"))
    doc.apply([{"op": "fix_dim", "dim": f"p2o.DynamicDimension.{k}", "value": v} for k, v in enumerate([1, 160, 160])])
    data = RandomData(input_specs(doc.model), 2)
    analysis = analyze(doc.model, data, QuantOptions(end_to_end=False))
    for label in CONFIGS:
        payload = analysis.qdq_model(label).SerializeToString()
        for feeds in data.batches():
            unoptimized = _run(payload, ort.GraphOptimizationLevel.ORT_DISABLE_ALL, feeds)
            assert np.array_equal(_qdq_level(payload, feeds), unoptimized), label
            if label == "int16/minmax":
                nchwc = _run(payload, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, feeds, QDQ_CONFIG)
                assert not np.array_equal(nchwc, unoptimized)
