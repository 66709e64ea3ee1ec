"""Fixing dims writes a fully static file: what the report calls static is what the saved model declares.

Each model is made static the way a user does it (fix_dim / set_shape edits, or one make_static), saved,
loaded back with plain onnx, and run in onnxruntime: every graph output and value_info must declare
integer dims only, and the outputs must have exactly the declared shapes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from app.cli import main as cli_main
from app.graph import EditError, load_model, save_model, shape_report

from .builders import chain_model, doc_of, feeds_for, run, snapshot, yolo_like_model

DATA = Path(__file__).resolve().parents[1] / "data" / "yolo"


def declared_static(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Every declared shape of the file, asserting each is integers only."""
    shapes = {}
    for vi in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        dims = vi.type.tensor_type.shape.dim
        assert vi.type.tensor_type.HasField("shape"), f"{vi.name} declares no shape"
        assert all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims), f"{vi.name}: {dims}"
        shapes[vi.name] = [d.dim_value for d in dims]
    return shapes


def check_saved(doc, tmp_path) -> dict[str, list[int]]:
    report = shape_report(doc)
    assert report["all_static"], report["summary"]
    path = tmp_path / "static.onnx"
    save_model(doc, path)
    model = onnx.load(path)
    shapes = declared_static(model)
    produced = {o for n in model.graph.node for o in n.output if o}
    assert produced - {i.name for i in model.graph.initializer} <= set(shapes), "node outputs without value_info"
    feeds = {k: v if v.dtype.kind == "f" else np.zeros_like(v) for k, v in feeds_for(model).items()}  # token ids
    outputs = run(path, feeds)
    for vi in model.graph.output:
        assert list(outputs[vi.name].shape) == shapes[vi.name]
    return shapes


REAL = {
    "ppocrv4_det": [{"op": "set_shape", "tensor": "x", "shape": [1, 3, 640, 640]}],
    "ppocrv4_rec": [{"op": "set_shape", "tensor": "x", "shape": [1, 3, 48, 320]}],
    "minilm_l6_int8": [
        {"op": "fix_dim", "dim": "batch", "value": 1},
        {"op": "fix_dim", "dim": "sequence", "value": 128},
    ],
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_model_fixed_through_edits_saves_fully_static(fixture_model, tmp_path, name):
    doc = load_model(fixture_model(name))
    before = snapshot(doc)
    doc.apply(REAL[name])
    check_saved(doc, tmp_path)
    for _ in REAL[name]:
        doc.undo()
    assert doc.model == before


def test_ppocrv4_rec_output_shape(fixture_model, tmp_path):
    doc = load_model(fixture_model("ppocrv4_rec"))
    doc.apply([{"op": "make_static", "shapes": {"x": [1, 3, 48, 320]}}])
    assert check_saved(doc, tmp_path)["softmax_11.tmp_0"] == [1, 40, 6625]


def test_yolo_like_dynamic_batch_height_width(tmp_path):
    doc = doc_of(yolo_like_model(), tmp_path)
    report = shape_report(doc)
    assert sorted(report["dynamic_dims"]) == ["batch", "height", "width"]
    doc.apply([{"op": "make_static", "dims": {"batch": 2, "height": 320, "width": 256}}])
    shapes = check_saved(doc, tmp_path)
    assert shapes["output0"] == [2, 6, 80 * 64 + 40 * 32]
    assert shapes["m1.out"] == [2, 8, 80, 64]  # the exporter's formula in value_info is replaced


def test_fixing_one_dim_writes_what_becomes_known_and_keeps_the_rest_symbolic(tmp_path):
    doc = doc_of(yolo_like_model(), tmp_path)
    doc.apply([{"op": "fix_dim", "dim": "batch", "value": 1}])
    model = snapshot(doc)
    out = model.graph.output[0].type.tensor_type.shape.dim
    assert out[0].dim_value == 1 and out[1].dim_value == 6 and out[2].dim_param  # anchors still unknown
    report = shape_report(doc)
    assert not report["all_static"] and report["summary"].endswith("tensors not static")
    assert list(report["dynamic_dims"]) == ["height", "width"]


def test_declared_output_contradicting_inference_is_corrected_and_reported(tmp_path):
    model = chain_model()
    y = model.graph.output[0]
    y.type.tensor_type.ClearField("shape")
    for d in (1, 4, 64):  # rank 3, where inference says [1, 4, 8, 8]
        y.type.tensor_type.shape.dim.add().dim_value = d
    doc = doc_of(model, tmp_path)
    report = shape_report(doc)
    assert report["tensors"]["y"]["status"] == "stale" and report["tensors"]["y"]["declared"] == [1, 4, 64]
    assert not report["all_static"] and report["summary"] == f"1 of {report['total']} tensors not static"
    doc.apply([{"op": "infer_shapes"}])
    assert shape_report(doc)["all_static"]
    assert check_saved(doc, tmp_path)["y"] == [1, 4, 8, 8]


def test_custom_op_declaration_inference_cannot_tell_is_kept(tmp_path):
    model = chain_model()
    node = helper.make_node("Mystery", ["z"], ["q"], name="custom", domain="vendor")
    model.graph.node.append(node)
    model.opset_import.append(helper.make_opsetid("vendor", 1))
    model.graph.value_info.append(helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 4, 8, 8]))
    doc = doc_of(model, tmp_path)
    doc.apply([{"op": "infer_shapes"}])
    kept = [vi for vi in doc.model.graph.value_info if vi.name == "q"]
    assert kept and [d.dim_value for d in kept[0].type.tensor_type.shape.dim] == [1, 4, 8, 8]


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"op": "make_static"}, "make_static takes"),
        ({"op": "make_static", "shapes": {"nope": [1]}}, "not a model input"),
        ({"op": "make_static", "shapes": {"images": [1, 3, 320]}}, "has 4 dims"),
        ({"op": "make_static", "shapes": {"images": [1, 3, 0, 320]}}, "positive sizes"),
        ({"op": "make_static", "dims": {"height": "big"}}, "positive size"),
        ({"op": "make_static", "dims": {"nope": 3}}, "no symbolic dim named 'nope'"),
    ],
)
def test_make_static_refuses_bad_input_and_changes_nothing(tmp_path, edit, message):
    doc = doc_of(yolo_like_model(), tmp_path)
    before = snapshot(doc)
    with pytest.raises(EditError, match=message):
        doc.apply([edit])
    assert doc.model == before and doc.version == 0


def test_cli_make_static(tmp_path, capsys):
    source = tmp_path / "yolo.onnx"
    onnx.save(yolo_like_model(), source)
    out = tmp_path / "static.onnx"
    assert cli_main(["make-static", str(source), "--shape", "images=1x3x320x320", "-o", str(out)]) == 0
    assert capsys.readouterr().out.startswith("all ")
    assert declared_static(onnx.load(out))["output0"] == [1, 6, 8000]
    # a dim left open: the file is written, the exit code and the list say what is not static
    assert cli_main(["make-static", str(source), "--dim", "batch=1", "-o", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "tensors not static" in printed and "dynamic dim height: images[2]" in printed
    assert cli_main(["make-static", str(source), "--shape", "images=1x3", "-o", str(out)]) == 2
    assert cli_main(["make-static", str(source), "--dim", "batch=0", "-o", str(out)]) == 2


@pytest.mark.parametrize(
    "name, dims, output",
    [
        ("yolo_dyn", {"batch": 1, "height": 640, "width": 480}, [1, 7, 80 * 60 + 40 * 30 + 20 * 15]),
        ("yolo_topk", {"batch": 2, "height": 320, "width": 320}, [2, 50, 5]),
    ],
)
def test_torch_exported_yolo_with_dynamic_batch_height_width(tmp_path, name, dims, output):
    """A YOLOv8-style export by torch.onnx (tests/data/yolo/export.py): anchors computed from the feature-map
    shapes with Range/Shape arithmetic, symbolic output dims named by the exporter."""
    doc = load_model(DATA / f"{name}.onnx")
    assert sorted(shape_report(doc)["dynamic_dims"]) == ["batch", "height", "width"]
    doc.apply([{"op": "make_static", "dims": dims}])
    assert check_saved(doc, tmp_path)["output0"] == output
