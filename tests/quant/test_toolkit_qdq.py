"""The QDQ models reproduce the toolkit's arithmetic: Acuity's all-int16 on PP-OCRv4 det with photos."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from app.quant import QuantOptions, analyze
from app.quant.calibration import ArrayData
from app.quant.model import input_specs
from tests.quant.models import conv_net
from tests.quant.test_real_models import _static_detector

skimage_data = pytest.importorskip("skimage.data")

MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


def _photos(size: int) -> np.ndarray:
    """Four of scikit-image's sample photos, resized and normalised as PaddleOCR feeds them (NCHW)."""
    images = [skimage_data.astronaut(), skimage_data.coffee(), skimage_data.chelsea(), skimage_data.rocket()]
    batch = [
        (np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR), np.float32) - MEAN) / STD for im in images
    ]
    return np.stack(batch).transpose(0, 3, 1, 2).astype(np.float32)


def _sqnr(reference: list[np.ndarray], candidate: list[np.ndarray]) -> float:
    x = np.concatenate([r.reshape(-1) for r in reference]).astype(np.float64)
    y = np.concatenate([c.reshape(-1) for c in candidate]).astype(np.float64)
    return 10 * math.log10(float(np.dot(x, x)) / float(np.dot(x - y, x - y)))


def _run(model: onnx.ModelProto | bytes, x: np.ndarray, outputs: list[str] | None = None) -> list[list[np.ndarray]]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    payload = model if isinstance(model, bytes) else model.SerializeToString()
    sess = ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
    return [sess.run(outputs, {"x": x[i : i + 1]}) for i in range(len(x))]


def _fl(absmax: float) -> int:
    """Acuity's dynamic fixed point i16: fl = 15 - ceil(log2(max |x|))."""
    return 15 - math.ceil(math.log2(absmax))


def _on_grid(values: np.ndarray, fl: int, name: str, bits: int) -> onnx.TensorProto:
    """Dynamic fixed point: values rounded to multiples of 2^-fl, clipped to a signed ``bits`` integer."""
    q = np.clip(np.rint(values.astype(np.float64) * 2.0**fl), -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
    return numpy_helper.from_array((q * 2.0**-fl).astype(np.float32), name)


def _w16a16_reference(model: onnx.ModelProto, points: list[str], x: np.ndarray) -> onnx.ModelProto:
    """Written independently of the engine's arithmetic: every Conv/ConvTranspose weight fake-quantized
    to int16 at 2^-fl (per tensor), its bias to i64 at fl_in + fl_w, every layer output through an
    int16 QuantizeLinear/DequantizeLinear at 2^-fl with fl from the float model's own min/max. ``model``: as the toolkit
    quantizes it, BN and scale-and-shift folded into the convolutions (test_layers checks the folding)."""
    ref = onnx.ModelProto()
    ref.CopyFrom(model)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_tensor_value_info(p, TensorProto.FLOAT, None) for p in points if p != "x")
    runs = _run(probe, x, [o.name for o in probe.graph.output])
    names = [o.name for o in probe.graph.output]
    absmax = {p: max(float(np.abs(r[names.index(p)]).max()) for r in runs) for p in points if p != "x"}
    absmax["x"] = float(np.abs(x).max())
    # weights at 2^-fl_w; biases at 2^-(fl_in + fl_w), fl_in of the layer's input (through Resize/Concat)
    producers = {out: node for node in ref.graph.node for out in node.output}
    tensors = {t.name: t for t in ref.graph.initializer}
    tensors.update({n.output[0]: n.attribute[0].t for n in ref.graph.node if n.op_type == "Constant"})
    for node in [n for n in ref.graph.node if n.op_type in ("Conv", "ConvTranspose")]:
        w = numpy_helper.to_array(tensors[node.input[1]])
        fl_w = _fl(float(np.abs(w).max()))
        tensors[node.input[1]].CopyFrom(_on_grid(w, fl_w, node.input[1], 16))
        if len(node.input) > 2:
            source = node.input[0]
            while source not in absmax:
                source = producers[source].input[0]
            fl_b = _fl(absmax[source]) + fl_w
            tensors[node.input[2]].CopyFrom(
                _on_grid(numpy_helper.to_array(tensors[node.input[2]]), fl_b, node.input[2], 64)
            )
    nodes = []
    for node in ref.graph.node:
        nodes.append(node)
        for k, out in enumerate(node.output):
            if out in absmax:
                node.output[k] = f"{out}_float"
                nodes += _qdq(ref, f"{out}_float", out, _fl(absmax[out]))
    head = _qdq(ref, "x", "x_q", _fl(absmax["x"]))
    for node in nodes:
        for k, name in enumerate(node.input):
            if name == "x":
                node.input[k] = "x_q"
    del ref.graph.node[:]
    ref.graph.node.extend(head + nodes)
    ref.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return ref


def _qdq(model: onnx.ModelProto, source: str, target: str, fl: int) -> list[onnx.NodeProto]:
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(2.0**-fl, np.float32), f"{target}_s"),
            numpy_helper.from_array(np.array(0, np.int16), f"{target}_z"),
        ]
    )
    args = [f"{target}_s", f"{target}_z"]
    return [
        helper.make_node("QuantizeLinear", [source, *args], [f"{target}_q"], domain="com.microsoft"),
        helper.make_node("DequantizeLinear", [f"{target}_q", *args], [target], domain="com.microsoft"),
    ]


@pytest.mark.slow
def test_acuity_all_int16_matches_a_hand_built_w16a16_reference(fixture_model, tmp_path) -> None:
    _static_detector(fixture_model("ppocrv4_det"), tmp_path / "det.onnx")
    model = onnx.load(tmp_path / "det.onnx")
    x = _photos(640)
    np.savez(tmp_path / "photos.npz", x=x)
    data = ArrayData(tmp_path / "photos.npz", input_specs(model))
    analysis = analyze(model, data, QuantOptions(target="acuity", end_to_end=False))
    grid = analysis.precision("int16/minmax")
    assert {aq.quantizer.name for aq in grid.values()} == {"dfp16"}
    assert {wq.quantizer.name for _, wq in analysis.weight_grids(grid).values()} == {"dfp16"}
    measured = analysis.measure(grid, data)
    output = model.graph.output[0].name
    engine = measured[output].sqnr_db

    floats = _run(model, x)
    built = _w16a16_reference(analysis.folded_model, list(analysis.tensors), x)
    reference = _sqnr([r[0] for r in floats], [r[0] for r in _run(built, x)])
    print(f"acuity all-int16 {engine:.2f} dB, hand-built W16A16 power-of-two reference {reference:.2f} dB")
    assert abs(engine - reference) < 1.0
    assert engine > 25.0  # W16A16: the issue measured 32.3 dB where A16W8 gave 8.1 dB


@pytest.mark.parametrize("target", ["acuity", "rknn"])
def test_exported_qdq_runs_optimized_as_measured(target: str, tmp_path) -> None:
    """The exported int16 model gives the measured numbers in onnxruntime with its default optimizations:
    the outlier channel's bias of 200 lies beyond int32 on the 16-bit grid, where the optimizer would
    wrap it, so it is added after its Conv."""
    model = conv_net(outlier=True, seed=1)
    x = np.random.default_rng(2).standard_normal((3, 3, 16, 16)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    analysis = analyze(
        model, ArrayData(tmp_path / "x.npz", input_specs(model)), QuantOptions(target=target, end_to_end=False)
    )
    qdq = analysis.qdq_for(analysis.precision("int16/minmax"))
    assert [n.name for n in qdq.graph.node if n.name.endswith("/bias_add")] == ["c1/bias_add"]
    assert sum(t.name.endswith("/on_grid") for t in qdq.graph.initializer) == 4  # the other biases
    assert sum(n.op_type == "QuantizeLinear" for n in qdq.graph.node) == len(analysis.tensors)  # one per layer
    optimized = ort.InferenceSession(qdq.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = _run(qdq, x)
    for i in range(len(x)):
        for got, want in zip(optimized.run(None, {"x": x[i : i + 1]}), expected[i], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
