"""QDQ export, int16 vs uint8 on a planted outlier channel, hybrid target, errors, cancellation."""

from __future__ import annotations

import json
import threading

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from app.cli import main
from app.quant import (
    QuantCancelled,
    QuantError,
    QuantOptions,
    analyze,
    build_report,
    open_calibration_data,
    quant_table,
)
from app.quant.calibration import ArrayData, RandomData
from app.quant.model import input_specs
from tests.quant.models import conv_net, integer_model


def _cli(*argv: str) -> int:
    return main(["quant", *argv])


@pytest.fixture(scope="module")
def outlier_analysis(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("outlier")
    model = conv_net(outlier=True, seed=1)
    x = np.random.default_rng(2).standard_normal((6, 3, 16, 16)).astype(np.float32)
    np.savez_compressed(folder / "x.npz", x=x)
    analysis = analyze(model, ArrayData(folder / "x.npz", input_specs(model)), QuantOptions(target="onnxruntime"))
    return folder, model, x, analysis


def test_int16_beats_uint8_minmax_and_hybrid_meets_target(outlier_analysis) -> None:
    _, _, _, analysis = outlier_analysis
    report = build_report(analysis)
    e2e = report["end_to_end"]
    assert e2e["int16/minmax"]["y"]["sqnr_db"] > e2e["uint8/minmax"]["y"]["sqnr_db"] + 10
    rec = report["recommendation"]
    assert rec["meets_target"]
    assert report["verdict"]["hybrid"]["grade"] == "good" and rec["curve"][rec["knee"]]["grade"] == "good"
    assert 0 < len(rec["int16"]) < len(report["tensors"])
    assert "r1" in rec["int16"]  # the tensor holding the outlier channel
    assert report["format"] == "onnx-workbench/quant-report" and report["synthetic"] is False
    assert report["samples"] == 6
    tensor = report["tensors"]["r1"]
    assert tensor["max"] > 150 and set(tensor["ranges"]) == {"minmax", "kl", "percentile", "mse"}
    assert {"uint8/minmax", "uint8/kl", "int16/minmax", "int16/kl"} <= set(tensor["sqnr_db"])
    assert sum(tensor["histogram"]["counts"]) == tensor["count"]
    w = report["weights"]["w2"]
    assert w["sqnr_db"]["per_channel"] > w["sqnr_db"]["per_tensor"] and w["outlier_ratio"] > 1


def test_exported_qdq_runs_and_matches_measurement(outlier_analysis, tmp_path) -> None:
    _, model, x, analysis = outlier_analysis
    path = tmp_path / "q.onnx"
    analysis.export_qdq(path)
    exported = onnx.load(path)
    ops = {n.op_type for n in exported.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int16_points = [
        n
        for n in exported.graph.initializer
        if n.name.endswith("/zero_point") and n.data_type == onnx.TensorProto.INT16
    ]
    assert int16_points
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y, r = sess.run(None, {"x": x[:1]})[0], ref.run(None, {"x": x[:1]})[0]
    e2e = build_report(analysis)["end_to_end"]
    assert 10 * np.log10(np.sum(r**2) / np.sum((r - y) ** 2)) > e2e["uint8/minmax"]["y"]["sqnr_db"] + 5
    table = quant_table(analysis)
    assert table["tensors"]["r1"]["dtype"] == "int16" and table["tensors"]["w1"]["dtype"] == "uint8"
    for entry in table["tensors"].values():
        assert {"dtype", "scale", "zero_point", "range", "algorithm"} <= set(entry)


def test_cli_writes_report_table_and_model(outlier_analysis, tmp_path) -> None:
    folder, model, _, _ = outlier_analysis
    onnx.save(model, tmp_path / "m.onnx")
    code = _cli(
        str(tmp_path / "m.onnx"),
        "--data",
        str(folder / "x.npz"),
        "--report",
        str(tmp_path / "r.json"),
        "--export-qdq",
        str(tmp_path / "q.onnx"),
        "--table",
        str(tmp_path / "t.json"),
        "--per-channel",
        "--export-config",
        "uint8/kl",
        "--quiet",
    )
    assert code == 0
    assert (tmp_path / "r.json").stat().st_size > 0 and (tmp_path / "t.json").is_file()
    ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])


def test_random_data_is_marked_synthetic() -> None:
    model = conv_net()
    analysis = analyze(model, RandomData(input_specs(model), 2), QuantOptions(target="onnxruntime", end_to_end=False))
    report = build_report(analysis, histograms=False)
    assert report["synthetic"] is True and report["end_to_end"] == {} and "recommendation" not in report


def test_bad_calibration_data(tmp_path) -> None:
    model = conv_net()
    specs = input_specs(model)
    np.savez(tmp_path / "names.npz", image=np.zeros((2, 3, 16, 16), np.float32))
    with pytest.raises(QuantError, match="missing \\['x'\\].*unexpected \\['image'\\]"):
        open_calibration_data(specs, tmp_path / "names.npz")
    np.savez(tmp_path / "shape.npz", x=np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(QuantError, match="does not fit input x"):
        open_calibration_data(specs, tmp_path / "shape.npz")
    np.savez(tmp_path / "rank.npz", x=np.zeros((3, 16, 16), np.float32))
    with pytest.raises(QuantError, match="rank 4"):
        open_calibration_data(specs, tmp_path / "rank.npz")
    np.savez(tmp_path / "dtype.npz", x=np.zeros((2, 3, 16, 16), np.int64))
    with pytest.raises(QuantError, match="dtype int64 but input x"):
        open_calibration_data(specs, tmp_path / "dtype.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(QuantError, match="neither an .npz"):
        open_calibration_data(specs, tmp_path / "junk.npz")
    with pytest.raises(QuantError, match="no calibration data"):
        open_calibration_data(specs, None)
    np.save(tmp_path / "ok.npy", np.zeros((2, 3, 16, 16), np.float64))
    assert open_calibration_data(specs, tmp_path / "ok.npy").num_samples == 2  # float64 -> float32 is fine
    assert _cli("missing.onnx", "--random", "1", "--report", str(tmp_path / "r.json")) == 2


@pytest.mark.parametrize(
    "options",
    [{"seed": -1}, {"target_margin_db": float("nan")}, {"target_sqnr_db": float("inf")}, {"percentile": float("nan")}],
)
def test_options_numpy_or_the_report_cannot_take_are_refused(options: dict) -> None:
    with pytest.raises(QuantError):
        QuantOptions(**options)


def test_cli_refuses_a_negative_seed(tmp_path) -> None:
    onnx.save(conv_net(), tmp_path / "m.onnx")
    assert _cli(str(tmp_path / "m.onnx"), "--random", "1", "--seed", "-1", "--report", str(tmp_path / "r.json")) == 2
    assert not (tmp_path / "r.json").exists()


def test_dynamic_dims_named_or_taken_from_data(tmp_path) -> None:
    model = conv_net(input_dims=["batch", 3, "height", "width"])
    specs = input_specs(model)
    with pytest.raises(QuantError, match="input 'x': dim 0 \\('batch'\\), dim 2 \\('height'\\), dim 3 \\('width'\\)"):
        open_calibration_data(specs, None, random_samples=2)
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 3, 12, 20), np.float32))
    data = open_calibration_data(specs, tmp_path / "x.npz")
    assert data.shapes == {"x": (1, 3, 12, 20)} and data.num_samples == 2
    fixed = open_calibration_data(specs, None, random_samples=1, shapes={"x": (1, 3, 8, 8)})
    assert next(fixed.batches())["x"].shape == (1, 3, 8, 8)


def test_non_float_model() -> None:
    model = integer_model()
    with pytest.raises(QuantError, match="no float32 activation tensors"):
        analyze(model, RandomData(input_specs(model), 1))


def test_cancel_stops_between_batches_and_leaves_nothing_running(tmp_path) -> None:
    model = conv_net(size=32)
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(0).standard_normal((20, 3, 32, 32)).astype(np.float32))
    data = ArrayData(tmp_path / "x.npz", input_specs(model))
    stop = threading.Event()
    seen: list[tuple[int, int, str]] = []

    def progress(done: int, total: int, phase: str) -> None:
        seen.append((done, total, phase))
        if done >= 5:
            stop.set()

    before = set(threading.enumerate())
    with pytest.raises(QuantCancelled, match="cancelled"):
        analyze(model, data, progress=progress, cancel=stop)
    assert seen[0] == (0, 20, "statistics") and all(p == "statistics" for _, _, p in seen)
    assert max(d for d, _, _ in seen) < 20
    assert not [t for t in set(threading.enumerate()) - before if t.is_alive()]
    calls = iter([False, False, True])
    with pytest.raises(QuantCancelled):
        analyze(model, data, cancel=lambda: next(calls, True))


@pytest.mark.parametrize("opset", [17, 21])  # int16 through com.microsoft, then the standard ops
def test_int16_weights_follow_their_layers(outlier_analysis, opset: int) -> None:
    """W16A16 (as Acuity's and RKNN's int16 layers): all-int16 gains far more than with uint8 weights,
    and in a hybrid a weight is int16 exactly when its layer's output (after a fused Relu) is."""
    folder, _, x, a16w8 = outlier_analysis
    model = conv_net(outlier=True, seed=1, opset=opset)
    options = QuantOptions(target="onnxruntime", int16_weights=True, per_channel_weights=True, target_sqnr_db=30.0)
    analysis = analyze(model, ArrayData(folder / "x.npz", input_specs(model)), options)
    report = build_report(analysis)
    assert report["settings"]["int16"].endswith("(W16A16)")
    w16 = report["end_to_end"]["int16/minmax"]["y"]["sqnr_db"]
    assert w16 > build_report(a16w8)["end_to_end"]["int16/minmax"]["y"]["sqnr_db"] + 15
    rec = report["recommendation"]
    assert rec["meets_target"] and 0 < len(rec["int16"]) < len(report["tensors"])
    table = quant_table(analysis, "hybrid")["tensors"]
    layers = {"w1": "r1", "w2": "c2", "w3": "c3", "w4": "r4", "w5": "y"}  # r1 and r4: Relu fused into the Conv
    for weight, output in layers.items():
        assert table[weight]["dtype"] == ("int16" if output in rec["int16"] else "uint8"), weight
        assert isinstance(table[weight]["scale"], list)  # per channel
    assert {table[w]["dtype"] for w in layers} == {"int16", "uint8"}
    reference = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    unoptimized = ort.SessionOptions()  # as the analysis measures: ORT's optimizer would fold the bias into int32
    unoptimized.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # at int16 x int16 scales
    qdq = ort.InferenceSession(
        analysis.qdq_model("hybrid").SerializeToString(), unoptimized, providers=["CPUExecutionProvider"]
    )
    got = np.concatenate([qdq.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))]).astype(np.float64)
    expected = np.concatenate([reference.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))]).astype(np.float64)
    sqnr = 10 * np.log10(np.sum(expected**2) / np.sum((expected - got) ** 2))
    assert abs(sqnr - report["end_to_end"]["hybrid"]["y"]["sqnr_db"]) < 0.01 and sqnr >= 30.0


def test_cli_int16_weights_flag(outlier_analysis, tmp_path) -> None:
    folder, model, _, _ = outlier_analysis
    onnx.save(model, tmp_path / "m.onnx")
    table = tmp_path / "table.json"
    assert (
        _cli(
            str(tmp_path / "m.onnx"),
            "--data",
            str(folder / "x.npz"),
            "--report",
            str(tmp_path / "r.json"),
            "--target",
            "onnxruntime",
            "--int16-weights",
            "--no-end-to-end",
            "--export-config",
            "int16/minmax",
            "--table",
            str(table),
            "--quiet",
        )
        == 0
    )
    tensors = json.loads(table.read_text())["tensors"]
    assert tensors["w2"]["dtype"] == "int16" and tensors["c2"]["dtype"] == "int16"


def test_report_histograms_thinned_unless_the_cli_asks_for_full_ones(outlier_analysis, tmp_path) -> None:
    folder, model, _, analysis = outlier_analysis
    full = analysis.tensors["r1"].stats.histogram.to_json()
    thinned = build_report(analysis)["tensors"]["r1"]["histogram"]
    assert len(thinned["counts"]) <= 256 < thinned["thinned_from"] == len(full["counts"])
    onnx.save(model, tmp_path / "m.onnx")
    assert (
        _cli(
            str(tmp_path / "m.onnx"),
            "--data",
            str(folder / "x.npz"),
            "--report",
            str(tmp_path / "r.json"),
            "--target",
            "onnxruntime",
            "--no-end-to-end",
            "--full-histograms",
            "--quiet",
        )
        == 0
    )
    assert json.loads((tmp_path / "r.json").read_text())["tensors"]["r1"]["histogram"] == full
