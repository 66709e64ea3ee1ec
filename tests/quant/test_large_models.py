"""Models with external data: the analysis leaves the weights on disk (onnxruntime reads them from
the model's folder, the weight analysis maps them), so a model past protobuf's 2 GB is analysed
end to end in a fraction of its size, and the QDQ export copies the float data file to file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from app.quant import QuantError, QuantOptions, analyze, build_report, model_inputs, open_calibration_data
from tests.memory import peak_rss_growth
from tests.quant.models import conv_net


def test_external_data_gives_the_same_analysis_and_a_standalone_qdq(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    onnx.save(
        conv_net(outlier=True, seed=3),
        source / "conv.onnx",
        save_as_external_data=True,
        location="conv.weights",
        size_threshold=0,
    )
    assert (source / "conv.weights").stat().st_size > 0
    x = np.random.default_rng(4).standard_normal((4, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "calib.npy", x)

    loaded, specs = model_inputs(source / "conv.onnx")
    assert loaded.folder == source.resolve()
    assert all(t.data_location == TensorProto.EXTERNAL for t in loaded.proto.graph.initializer)
    for target in ("acuity", "onnxruntime"):  # acuity: folded weights and rounded biases from the mapped data too
        options = QuantOptions(target=target)
        external = analyze(loaded, open_calibration_data(specs, tmp_path / "calib.npy"), options)
        inline = analyze(conv_net(outlier=True, seed=3), open_calibration_data(specs, tmp_path / "calib.npy"), options)
        assert build_report(external) == build_report(inline), target
    with pytest.raises(QuantError, match="pass the model's path"):
        analyze(loaded.proto, open_calibration_data(specs, tmp_path / "calib.npy"))

    # the export keeps the external form (onnxruntime: its float biases stay external; acuity's QDQ model
    # replaces them by rounded copies); moved away from the float model's folder it still runs
    (tmp_path / "out").mkdir()
    written = external.export_qdq(tmp_path / "out" / "conv.qdq.onnx", "hybrid")
    assert [p.name for p in written] == ["conv.qdq.onnx", "conv.qdq.onnx.data"]
    shutil.rmtree(source)
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "out", moved)
    qdq = ort.InferenceSession(str(moved / "conv.qdq.onnx"), providers=["CPUExecutionProvider"])
    inline_qdq = ort.InferenceSession(
        inline.qdq_model("hybrid").SerializeToString(), providers=["CPUExecutionProvider"]
    )
    assert np.array_equal(qdq.run(None, {"x": x[:1]})[0], inline_qdq.run(None, {"x": x[:1]})[0])


ROWS, COLS = 540_000, 1024  # a float32 embedding table of 2.06 GiB


def _embedding_model(folder: Path) -> Path:
    """ids -> Gather(table) -> Relu -> mean, with the table in a sparse external file (all zeros but
    row 7, which is 1..COLS): the model is past protobuf's 2 GB but costs no disk."""
    nbytes = ROWS * COLS * 4
    with open(folder / "table.bin", "wb") as data:
        data.truncate(nbytes)
        data.seek(7 * COLS * 4)
        data.write(np.arange(1, COLS + 1, dtype="<f4").tobytes())
    table = TensorProto(
        name="table", data_type=TensorProto.FLOAT, dims=[ROWS, COLS], data_location=TensorProto.EXTERNAL
    )
    for key, value in (("location", "table.bin"), ("offset", "0"), ("length", str(nbytes))):
        entry = table.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "ids"], ["rows"], name="lookup"),
            helper.make_node("Relu", ["rows"], ["act"], name="relu"),
            helper.make_node("ReduceMean", ["act"], ["out"], axes=[1], keepdims=0, name="mean"),
        ],
        "embedding",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, COLS])],
        [table],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder / "embedding.onnx")
    return folder / "embedding.onnx"


def test_model_over_2gb_is_analysed_without_loading_its_weights(tmp_path: Path) -> None:
    path = _embedding_model(tmp_path)
    ids = np.array([[7, 0, 7, 1], [2, 7, 3, 4]], dtype=np.int64)
    np.save(tmp_path / "ids.npy", ids)
    with peak_rss_growth() as growth:
        loaded, specs = model_inputs(path)
        analysis = analyze(loaded, open_calibration_data(specs, tmp_path / "ids.npy"))
    report = build_report(analysis)
    assert report["tensors"]["act"]["min"] == 0.0 and report["tensors"]["act"]["max"] == COLS
    assert (
        report["end_to_end"]["int16/minmax"]["out"]["sqnr_db"] > report["end_to_end"]["uint8/minmax"]["out"]["sqnr_db"]
    )
    assert growth[0] < 512 * 2**20, f"peak RSS grew by {growth[0] / 2**20:.0f} MiB for 2.06 GiB of weights"

    if shutil.disk_usage(tmp_path).free < 6 * 1024**3:
        pytest.skip("the QDQ export writes the 2 GiB table: needs 6 GB of free disk")
    out = tmp_path / "qdq"
    out.mkdir()
    written = analysis.export_qdq(out / "embedding.qdq.onnx", "int16/minmax")
    assert [p.name for p in written] == ["embedding.qdq.onnx", "embedding.qdq.onnx.data"]
    sess = ort.InferenceSession(str(written[0]), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"ids": ids[:1]})[0]
    expected = np.arange(1, COLS + 1, dtype=np.float32) / 2  # row 7 twice, rows 0 and 1 zero
    assert np.allclose(got[0], expected, rtol=1e-3, atol=COLS / 65535)
    os.remove(written[1])
