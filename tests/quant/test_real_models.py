"""Real models end to end through the CLI: PP-OCRv4 detection (images) and MiniLM (tokens)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from app.cli import main
from app.quant.model import opset_version


def _cli(*argv: str) -> int:
    return main(["quant", *argv])


def _static_detector(source: Path, out: Path) -> None:
    """PP-OCRv4 det fixed to 1x3x640x640 the way a user does it: the engine's fix_dim edits."""
    main(["apply", str(source), str(_script(out.with_suffix(".json"))), "-o", str(out)])


def _script(path: Path) -> Path:
    edits = [{"op": "fix_dim", "dim": f"p2o.DynamicDimension.{k}", "value": v} for k, v in enumerate([1, 640, 640])]
    path.write_text(json.dumps({"format": "onnx-workbench/edits", "version": 1, "edits": edits}))
    return path


def _image_like(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth gradients with dark strokes, uint8 HxWx3: text-ish content for a detector."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = 200 + 40 * np.sin(6 * xx + rng.random() * 3)[..., None] * np.array([1.0, 0.8, 0.6])
    image = np.repeat(base, 1, axis=2).astype(np.float32)
    for _ in range(12):
        r, c = rng.integers(0, size - 40, 2)
        image[r : r + 12, c : c + rng.integers(60, 200)] = rng.integers(0, 60)
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


@pytest.mark.slow
def test_ppocrv4_det_images(fixture_model, tmp_path) -> None:
    _static_detector(fixture_model("ppocrv4_det"), tmp_path / "det.onnx")
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as archive:
        for k in range(2):
            buffer = io.BytesIO()
            Image.fromarray(_image_like(rng, 640)).save(buffer, format="PNG")
            archive.writestr(f"img{k}.png", buffer.getvalue())
    data = [str(tmp_path / "images.zip"), "--mean", "123.675,116.28,103.53", "--std", "58.395,57.12,57.375"]
    code = _cli(
        str(tmp_path / "det.onnx"),
        "--data",
        *data,
        "--report",
        str(tmp_path / "r.json"),
        "--export-qdq",
        str(tmp_path / "q.onnx"),
        "--per-channel",
        "--quiet",
    )
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["samples"] == 2 and report["synthetic"] is False
    assert len(report["tensors"]) > 100 and report["weights"]
    (output,) = report["end_to_end"]["int16/minmax"]
    e2e = {k: v[output]["sqnr_db"] for k, v in report["end_to_end"].items()}
    assert e2e["int16/minmax"] > e2e["uint8/minmax"]
    assert report["recommendation"]["meets_target"]
    # exported at opset 13 (the model is 12): loads with onnxruntime's default optimizations
    assert opset_version(onnx.load(str(tmp_path / "q.onnx"))) == 13
    sess = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": np.zeros((1, 3, 640, 640), np.float32)})[0].shape[-2:] == (640, 640)


def test_minilm_tokens(fixture_model, tmp_path) -> None:
    rng = np.random.default_rng(0)
    samples, length = 3, 16
    ids = rng.integers(1000, 5000, (samples, length)).astype(np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    np.savez(
        tmp_path / "tokens.npz", input_ids=ids, attention_mask=np.ones_like(ids), token_type_ids=np.zeros_like(ids)
    )
    code = _cli(
        str(fixture_model("minilm_l6_int8")),
        "--data",
        str(tmp_path / "tokens.npz"),
        "--report",
        str(tmp_path / "r.json"),
        "--table",
        str(tmp_path / "t.json"),
        "--quiet",
        "--no-histograms",
    )
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    ops = {t["op_type"] for t in report["tensors"].values()}
    assert {"LayerNormalization", "MatMul"} <= ops
    assert "input_ids" not in report["tensors"]  # integer inputs are not quantization points
    assert report["end_to_end"]["hybrid"]["last_hidden_state"]["cosine"] > 0.9
    assert report["recommendation"]["meets_target"]
