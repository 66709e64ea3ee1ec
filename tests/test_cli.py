"""The onnx-workbench command as a user runs it: real files, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx

from tests.graph.builders import chain_model, feeds_for, matmul_model, run


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=120)


def write_script(path: Path, edits: list[dict]) -> Path:
    path.write_text(json.dumps({"format": "onnx-workbench/edits", "version": 1, "edits": edits}))
    return path


def test_apply_writes_edited_model(tmp_path):
    onnx.save_model(chain_model(), tmp_path / "m.onnx")
    script = write_script(
        tmp_path / "e.json",
        [
            {"op": "delete_node", "node": "ident", "reconnect": True},
            {"op": "rename_tensor", "tensor": "y", "to": "score"},
        ],
    )
    result = cli("apply", str(tmp_path / "m.onnx"), str(script), "-o", str(tmp_path / "out.onnx"))
    assert result.returncode == 0, result.stderr
    assert "applied 2 edit(s)" in result.stdout
    edited = onnx.load(tmp_path / "out.onnx")
    assert [o.name for o in edited.graph.output] == ["score", "z"]
    feeds = feeds_for(edited)
    np.testing.assert_array_equal(run(edited, feeds)["score"], run(chain_model(), feeds)["y"])


def test_apply_external_data_flag(tmp_path):
    weight = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    onnx.save_model(matmul_model(weight), tmp_path / "m.onnx")
    script = write_script(tmp_path / "e.json", [])
    result = cli("apply", str(tmp_path / "m.onnx"), str(script), "-o", str(tmp_path / "out.onnx"), "--external-data")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.onnx.data").stat().st_size >= weight.nbytes
    assert (tmp_path / "out.onnx").stat().st_size < 1024
    x = np.ones((1, 256), np.float32)
    np.testing.assert_allclose(run(tmp_path / "out.onnx", {"x": x})["y"], x @ weight, rtol=1e-4, atol=1e-4)


def test_shapes_fix_and_json(tmp_path, fixture_model):
    model = fixture_model("ppocrv4_det")
    text = cli("shapes", str(model))
    assert text.returncode == 0
    assert "dynamic dim p2o.DynamicDimension.0: x[0]" in text.stdout
    fixed = cli(
        "shapes",
        str(model),
        "--fix",
        "p2o.DynamicDimension.0=1",
        "--fix",
        "p2o.DynamicDimension.1=640",
        "--fix",
        "p2o.DynamicDimension.2=640",
        "--json",
    )
    report = json.loads(fixed.stdout)
    assert report["all_static"] and report["summary"] == f"all {report['total']} tensors static"


def test_info(fixture_model):
    result = cli("info", str(fixture_model("minilm_l6_int8")), "--json")
    summary = json.loads(result.stdout)
    assert [i["name"] for i in summary["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"]
    assert summary["inputs"][0]["shape"] == ["batch", "sequence"]


def test_bad_input_exits_2_with_one_line(tmp_path):
    onnx.save_model(chain_model(), tmp_path / "m.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07not a model at all" * 10)
    cases = [
        ("info", str(tmp_path / "missing.onnx")),
        ("info", str(tmp_path / "junk.onnx")),
        (
            "apply",
            str(tmp_path / "m.onnx"),
            str(write_script(tmp_path / "bad.json", [{"op": "delete_node", "node": "nope"}])),
            "-o",
            str(tmp_path / "o.onnx"),
        ),
        ("apply", str(tmp_path / "m.onnx"), str(tmp_path / "no-script.json"), "-o", str(tmp_path / "o.onnx")),
        ("shapes", str(tmp_path / "m.onnx"), "--fix", "batch"),
    ]
    for args in cases:
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("onnx-workbench: "), (args, result.stderr)
    assert not (tmp_path / "o.onnx").exists()


def test_models_the_guard_refuses_exit_2_naming_the_field(tmp_path):
    """The CLI loads through the same guard as the service: a bad initializer or a NaN in a script."""
    model = chain_model()
    model.graph.initializer[0].dims.append(1 << 62)
    onnx.save_model(model, tmp_path / "huge.onnx")
    result = cli("info", str(tmp_path / "huge.onnx"))
    assert result.returncode == 2 and "graph.initializer[0]" in result.stderr and "2^62" in result.stderr
    onnx.save_model(chain_model(), tmp_path / "m.onnx")
    (tmp_path / "nan.json").write_text('{"edits": [{"op": "fix_dim", "dim": "batch", "value": NaN}]}')
    result = cli("apply", str(tmp_path / "m.onnx"), str(tmp_path / "nan.json"), "-o", str(tmp_path / "o.onnx"))
    assert result.returncode == 2 and "field 'value' is nan" in result.stderr, result.stderr
