"""The HTTP layer against hostile input: download names, body limits, unexpected errors, security headers,
server paths in error messages."""
from __future__ import annotations

import io
import json
import zipfile
import re
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient

from app.graph import load_model, save_model
from tests.quant.models import conv_net

from .conftest import upload
from .models import odd_names_model
from .test_quant_api import start, wait

TENSOR_NAMES = ["权重", "ü Grüße", "😀", 'w"; filename="evil.sh', "w; filename*=UTF-8''evil.sh", "w\tSet-Cookie: a=1",
                "back\\slash/and/slash", "100% sure", "\x7f\t"]
DISPOSITION = re.compile(r"attachment; filename=\"([\x20-\x21\x23-\x24\x26-\x3a\x3c-\x5b\x5d-\x7e]+)\"; "
                         r"filename\*=UTF-8''([A-Za-z0-9%._~-]+)")
FILE_NAMES = ["模型.onnx", 'q"; filename=evil.sh;.onnx', "a;b=c.onnx", "Grüße 100%.onnx"]


def saved_name(disposition: str) -> str:
    """The name a client saves a download under. The header must be `attachment` with exactly the two
    file name parameters: an ASCII one that a quote, semicolon or line break cannot end early, and the
    exact name percent-encoded as UTF-8 (a name that added a parameter would not match)."""
    match = DISPOSITION.fullmatch(disposition)
    assert match, disposition
    return unquote(match[2], errors="strict")


def safe(name: str) -> str:
    """What a file name becomes in a download: path separators and control characters are replaced."""
    return "".join("_" if c in "/\\" or ord(c) < 32 or ord(c) == 127 else c for c in name)


@pytest.mark.parametrize("name", TENSOR_NAMES)
def test_tensor_download_of_any_name(client: TestClient, tmp_path: Path, name: str) -> None:
    sid = upload(client, odd_names_model(tmp_path / "m.onnx", weight=name))
    r = client.get(f"/api/sessions/{sid}/tensors/{quote(name, safe='')}.npy")
    assert r.status_code == 200, r.text
    assert saved_name(r.headers["content-disposition"]) == safe(name) + ".npy"
    assert np.array_equal(np.load(io.BytesIO(r.content)), np.arange(6, dtype=np.float32).reshape(2, 3))


@pytest.mark.parametrize("name", FILE_NAMES)
def test_model_download_of_any_file_name_is_named_edited(client: TestClient, tmp_path: Path, name: str) -> None:
    path = odd_names_model(tmp_path / "m.onnx")
    r = client.post("/api/sessions", files={"file": (name, path.read_bytes())})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    stem = client.get(f"/api/sessions/{sid}").json()["filename"].removesuffix(".onnx")  # as the server got it
    r = client.get(f"/api/sessions/{sid}/model")
    assert r.status_code == 200, r.text
    assert saved_name(r.headers["content-disposition"]) == stem + ".edited.onnx"
    assert onnx.load_from_string(r.content) == onnx.load(str(path))

    script = json.dumps({"edits": [{"op": "rename_node", "node": "/model.23/Add", "to": "节点"}]})
    r = client.post("/api/apply", files=[("file", (name, path.read_bytes())), ("script", ("e.json", script))])
    assert r.status_code == 200, r.text
    assert saved_name(r.headers["content-disposition"]) == stem + ".edited.onnx"
    assert onnx.load_from_string(r.content).graph.node[0].name == "节点"


def test_zip_download_of_a_model_with_external_data_and_a_chinese_name(client: TestClient, tmp_path: Path,
                                                                      fixture_model) -> None:
    written = save_model(load_model(fixture_model("minilm_l6_int8")), tmp_path / "模型.onnx", external=True)
    sid = upload(client, *written)
    first = client.get(f"/api/sessions/{sid}/graph").json()["graph"]["nodes"][0]["id"]
    r = client.post(f"/api/sessions/{sid}/edits", json={"edits": [{"op": "rename_node", "node": first, "to": "节点"}]})
    assert r.status_code == 200, r.text
    r = client.get(f"/api/sessions/{sid}/model")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text
    assert saved_name(r.headers["content-disposition"]) == "模型.edited.zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert sorted(zf.namelist()) == ["模型.edited.onnx", "模型.edited.onnx.data"]
        zf.extractall(tmp_path / "out")
    assert onnx.load(str(tmp_path / "out" / "模型.edited.onnx")).graph.node[0].name == "节点"
    r = client.get(f"/api/sessions/{sid}/script")
    assert r.status_code == 200 and r.json()["edits"][0]["to"] == "节点"


def test_quant_downloads_of_a_chinese_named_session(client: TestClient, tmp_path: Path) -> None:
    model = conv_net(seed=3)
    model.graph.input[0].name = "输入"
    for node in model.graph.node:
        node.input[:] = ["输入" if i == "x" else i for i in node.input]
    onnx.save(model, tmp_path / "模型.onnx")
    sid = upload(client, tmp_path / "模型.onnx")
    job = start(client, sid, random=2)
    assert wait(client, job["job_id"])["state"] == "succeeded"
    base = f"/api/sessions/{sid}/quant/{job['job_id']}"
    for url, name in ((f"{base}/qdq?config=uint8/minmax", "model.uint8-minmax.qdq.onnx"),
                      (f"{base}/table?config=uint8/minmax", "quant-table.json")):
        r = client.get(url)
        assert r.status_code == 200, r.text
        assert saved_name(r.headers["content-disposition"]) == name
