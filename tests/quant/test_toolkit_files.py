"""Acuity's .quantize and RKNN's .quantization.cfg: the published shape, every layer, the hybrid's layers."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import yaml

from app.cli import main
from app.quant.quantizers import DFP16
from tests.quant.models import conv_net, picodet_like


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory):
    """The CLI on the picodet-like model for both toolkits, with a hybrid (absolute target) and the table."""
    folder = tmp_path_factory.mktemp("toolkit-files")
    onnx.save(picodet_like(), folder / "m.onnx")
    x = np.random.default_rng(4).standard_normal((4, 3, 32, 32)).astype(np.float32)
    np.savez(folder / "x.npz", x=x)
    written = {}
    for target, flag, name in (("acuity", "--export-acuity", "m.quantize"), ("rknn", "--export-rknn", "m.cfg")):
        code = main(
            [
                "quant",
                str(folder / "m.onnx"),
                "--data",
                str(folder / "x.npz"),
                "--target",
                target,
                "--report",
                str(folder / f"{target}.json"),
                "--table",
                str(folder / f"{target}.table.json"),
                "--target-sqnr-db",
                "39",
                flag,
                str(folder / name),
                "--quiet",
            ]
        )
        assert code == 0
        written[target] = (
            yaml.safe_load((folder / name).read_text()),
            (folder / name).read_text(),
            json.loads((folder / f"{target}.json").read_text()),
            json.loads((folder / f"{target}.table.json").read_text()),
        )
    return folder, written


def test_acuity_quantize_file(files) -> None:
    _, written = files
    doc, text, report, table = written["acuity"]
    assert text.startswith("# Acuity quantization file") and "ONNX node name" in text
    params = doc["quantize_parameters"]
    layers = {(t["layer"][0] if t["layer"] else name) for name, t in report["tensors"].items()}
    assert {key[1:].rsplit(":", 1)[0] for key in params} == layers  # every layer, nothing else
    assert {f"@{layer}:out0" for layer in layers} <= set(params)
    convs = [n.name for n in picodet_like().graph.node if n.op_type == "Conv"]
    assert all(f"@{c}:weight" in params for c in convs)
    hybrid = report["recommendation"]["int16"]
    assert 0 < len(hybrid) < len(report["tensors"])
    custom = doc["customized_quantize_layers"]
    assert custom == {(report["tensors"][t]["layer"] or [t])[0]: "dynamic_fixed_point-i16" for t in hybrid}
    for tensor, entry in report["tensors"].items():
        out = params[f"@{(entry['layer'] or [tensor])[0]}:out0"]
        assert out["method"] == "layer" and out["qtype"] in ("u8", "i16")
        if tensor in hybrid:
            assert out["dtype"] == "dynamic_fixed_point" and out["qtype"] == "i16" and "zero_point" not in out
            assert out["fl"] == [DFP16.fraction_length(out["min_value"], out["max_value"])]
            assert table["tensors"][tensor]["fl"] == out["fl"][0] and table["tensors"][tensor]["dtype"] == "int16"
        else:
            assert out["dtype"] == "asymmetric_affine" and out["qtype"] == "u8" and "fl" not in out
            assert len(out["scale"]) == len(out["zero_point"]) == 1
    promoted = next(t for t in hybrid if report["tensors"][t]["op_type"] == "Conv")
    layer = report["tensors"][promoted]["layer"][0]
    weight, bias = params[f"@{layer}:weight"], params.get(f"@{layer}:bias")
    assert weight["dtype"] == "dynamic_fixed_point" and weight["qtype"] == "i16"
    if bias is not None:  # bias fl = fl_in + fl_w, stored as i64 in 16-bit layers
        assert bias["qtype"] == "i64" and bias["fl"][0] > weight["fl"][0]


def test_rknn_cfg_file(files) -> None:
    _, written = files
    doc, text, report, _ = written["rknn"]
    assert text.startswith("# RKNN-Toolkit2 quantization config") and "ONNX tensor names" in text
    params = doc["quantize_parameters"]
    weights = {n.input[1] for n in picodet_like().graph.node if n.op_type == "Conv"}
    assert set(params) == set(report["tensors"]) | weights  # every layer's output and weight
    hybrid = report["recommendation"]["int16"]
    assert 0 < len(hybrid) < len(report["tensors"])
    assert doc["custom_quantize_layers"] == {t: "int16" for t in hybrid}
    for tensor in report["tensors"]:
        entry = params[tensor]
        assert entry["qtype"] == "asymmetric_quantized" and entry["qmethod"] == "layer"
        assert entry["dtype"] == ("int16" if tensor in hybrid else "int8")
        assert set(entry) == {"qtype", "qmethod", "dtype", "min", "max", "scale", "zero_point"}
    assert all(params[w]["qmethod"] == "channel" and len(params[w]["scale"]) == 8 for w in weights)


def test_toolkit_file_needs_its_target(tmp_path) -> None:
    onnx.save(conv_net(), tmp_path / "m.onnx")
    code = main(
        [
            "quant",
            str(tmp_path / "m.onnx"),
            "--random",
            "1",
            "--report",
            str(tmp_path / "r.json"),
            "--export-rknn",
            str(tmp_path / "m.cfg"),
            "--no-end-to-end",
            "--export-config",
            "uint8/minmax",
            "--quiet",
        ]
    )
    assert code == 2 and not (tmp_path / "m.cfg").exists()
