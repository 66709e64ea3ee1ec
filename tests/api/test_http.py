"""The HTTP layer against hostile input: download names, body limits, unexpected errors, security headers,
server paths in error messages."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import re
import select
import socket
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import numpy as np
import onnx
import psutil
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from onnx import TensorProto, helper

from app.graph import load_model, save_model
from app.server.app import create_app
from app.server.settings import Settings
from tests.memory import peak_rss_growth
from tests.quant.models import conv_net

from .conftest import error_of, make_client, upload
from .models import odd_names_model
from .server_process import ServerProcess, free_port
from .test_quant_api import start, wait

TENSOR_NAMES = [
    "权重",
    "ü Grüße",
    "😀",
    'w"; filename="evil.sh',
    "w; filename*=UTF-8''evil.sh",
    "w\tSet-Cookie: a=1",
    "back\\slash/and/slash",
    "100% sure",
    "\x7f\t",
]
DISPOSITION = re.compile(
    r"attachment; filename=\"([\x20-\x21\x23-\x24\x26-\x3a\x3c-\x5b\x5d-\x7e]+)\"; "
    r"filename\*=UTF-8''([A-Za-z0-9%._~-]+)"
)
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


def test_zip_download_of_a_model_with_external_data_and_a_chinese_name(
    client: TestClient, tmp_path: Path, fixture_model
) -> None:
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
    for url, name in (
        (f"{base}/qdq?config=uint8/minmax", "model.uint8-minmax.qdq.onnx"),
        (f"{base}/table?config=uint8/minmax", "quant-table.json"),
    ):
        r = client.get(url)
        assert r.status_code == 200, r.text
        assert saved_name(r.headers["content-disposition"]) == name


# -- body limits ------------------------------------------------------------------------------------
GB = 1 << 30


def post_streamed(
    url: str, path: str, content_type: str | None, size: int, chunked: bool, method: str = "POST"
) -> tuple[int, dict[str, str], bytes]:
    """Send `size` zero bytes from a generator (never held here) over a raw connection, with Content-Length
    or chunked, until the server answers; returns its status, headers and body."""
    host, port = url.removeprefix("http://").split(":")
    headers = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    headers += [f"Content-Type: {content_type}"] if content_type is not None else []
    headers += ["Transfer-Encoding: chunked"] if chunked else [f"Content-Length: {size}"]
    chunk = bytes(1 << 20)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
        sent = 0
        try:
            while sent < size and not select.select([sock], [], [], 0)[0]:  # stop once the answer comes
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                sent += len(chunk)
            if chunked and sent >= size:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were sending
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("server")
    with ServerProcess(folder / "data") as process:
        yield process


def test_a_1gb_body_to_a_route_that_does_not_stream_it_is_413_without_buffering(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Whatever content type a client declares, and with or without Content-Length, a route that reads its
    body whole gets the JSON cap: the server's memory stays flat and the answer is 413 with the error shape."""
    model = odd_names_model(tmp_path / "m.onnx")
    r = httpx.post(server.url + "/api/sessions", files={"file": ("m.onnx", model.read_bytes())})
    sid = r.json()["id"]
    targets = [f"/api/sessions/{sid}/edits", f"/api/sessions/{sid}/quant/{'j' * 32}/measure"]
    types = [
        "application/json",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
        "application/x-npy",
        "application/npy",
        "text/plain",
        None,
    ]
    cases = [(path, ct, chunked) for path in targets for ct in types for chunked in (False, True)]
    cases += [(f"/api/sessions/{sid}/run", "application/x-www-form-urlencoded", chunked) for chunked in (False, True)]
    process = psutil.Process(server.proc.pid)  # type: ignore[union-attr]
    idle = process.memory_info().rss
    with peak_rss_growth(server.proc.pid) as growth:  # type: ignore[union-attr]
        for path, content_type, chunked in cases:
            status, _, body = post_streamed(server.url, path, content_type, GB, chunked)
            assert httpx.get(server.url + "/healthz").status_code == 200
            error = json.loads(body)["error"]
            if content_type == "application/x-www-form-urlencoded" and chunked:  # the form parser's field limit
                assert status == 400 and "maximum size" in error["message"], error
                continue
            assert status == 413, (path, content_type, chunked, body[:300])
            assert error["code"] == "too_large" and "limit" in error["message"], error
    assert growth[0] < 300 << 20, f"RSS grew by {growth[0] >> 20} MiB from {idle >> 20} MiB"
    r = httpx.post(
        f"{server.url}/api/sessions/{sid}/edits",
        json={"edits": [{"op": "rename_node", "node": "/model.23/Add", "to": "a"}]},
    )
    assert r.status_code == 200 and r.json()["version"] == 1, r.text


def test_routes_that_stream_declare_it_and_keep_their_own_limits(data_dir: Path, tmp_path: Path) -> None:
    """With a JSON cap of 4 KB, an upload and a 40 KB .npy still pass (their routes stream them), while a
    JSON edit over 4 KB, or the same .npy sent to a route that reads its body whole, is 413."""
    with make_client(data_dir, max_json_body_bytes=4096) as client:
        sid = upload(client, odd_names_model(tmp_path / "m.onnx", weight="W"))
        r = client.post(
            f"/api/sessions/{sid}/edits",
            json={"edits": [{"op": "rename_node", "node": "/model.23/Add", "to": "n" * 5000}]},
        )
        assert error_of(r, 413, "too_large")
        buf = io.BytesIO()
        np.save(buf, np.zeros((2, 3), np.float32))
        padded = buf.getvalue()
        r = client.put(
            f"/api/sessions/{sid}/tensors/W.npy", content=padded, headers={"content-type": "application/octet-stream"}
        )
        assert r.status_code == 200, r.text
        wide = io.BytesIO()
        np.save(wide, np.zeros((100, 100), np.float32))
        r = client.put(
            f"/api/sessions/{sid}/tensors/W.npy",
            content=wide.getvalue(),
            headers={"content-type": "application/octet-stream"},
        )
        assert error_of(r, 422)  # read in full (40 KB) and refused for its shape, not its size
        r = client.post(
            f"/api/sessions/{sid}/edits", content=wide.getvalue(), headers={"content-type": "application/octet-stream"}
        )
        assert error_of(r, 413, "too_large")


# -- unexpected errors --------------------------------------------------------------------------------
@contextmanager
def serving(app: FastAPI) -> Iterator[tuple[str, int]]:
    """The app under a real uvicorn server on a free loopback port, in a thread of this process."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(10)


def test_an_unexpected_error_answers_the_error_shape_and_closes_the_connection(data_dir: Path) -> None:
    """A route that raises (added here: the service's own routes should not) answers 500 with the error
    shape and `Connection: close` on a keep-alive connection, and only then does the server close it."""
    app = create_app(Settings(data_dir=data_dir))

    @app.get("/api/test-only-failure")
    def fail() -> None:
        raise RuntimeError("planted failure")

    with serving(app) as (host, port), socket.create_connection((host, port)) as sock:
        request = f"GET /api/test-only-failure HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode()
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = json.loads(response.read())
        assert response.status == 500 and response.getheader("connection") == "close"
        assert body == {
            "error": {
                "code": "internal_error",
                "message": body["error"]["message"],
                "details": {"type": "RuntimeError"},
            }
        }
        assert "planted" not in body["error"]["message"]
        sock.settimeout(5)
        assert sock.recv(1) == b""  # closed by the server, as announced
        assert httpx.get(f"http://{host}:{port}/healthz").status_code == 200


# -- headers --------------------------------------------------------------------------------------------
def test_every_answer_has_the_security_headers_and_pages_a_policy(client: TestClient, tmp_path: Path) -> None:
    sid = upload(client, odd_names_model(tmp_path / "m.onnx"))
    page = client.get(f"/s/{sid}")
    script = page.text.split('<script type="module" src="', 1)[1].split('"', 1)[0]
    answers = {
        "page": page,
        "index": client.get("/"),
        "api": client.get(f"/api/sessions/{sid}"),
        "error": client.get("/api/nope"),
        "download": client.get(f"/api/sessions/{sid}/model"),
        "static": client.get(script),
        "health": client.get("/healthz"),
    }
    for what, r in answers.items():
        assert r.headers["x-content-type-options"] == "nosniff", what
        assert r.headers["x-frame-options"] == "DENY", what
        assert r.headers["referrer-policy"] == "no-referrer", what
    for what in ("page", "index"):
        policy = dict(d.strip().split(" ", 1) for d in answers[what].headers["content-security-policy"].split(";"))
        assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'", policy
        assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'", policy
        assert "<script>" not in answers[what].text and " style=" not in answers[what].text


def test_with_a_token_openapi_declares_the_bearer_scheme_on_api_routes(data_dir: Path) -> None:
    with make_client(data_dir) as client:
        assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})
    with make_client(data_dir, token="s3cret") as client:
        spec = client.get("/openapi.json").json()
        (scheme,) = spec["components"]["securitySchemes"].items()
        assert scheme[1]["type"] == "http" and scheme[1]["scheme"] == "bearer"
        for path, operations in spec["paths"].items():
            for operation in operations.values():
                assert (operation.get("security") == [{scheme[0]: []}]) == path.startswith("/api/"), path
        docs = client.get("/docs")
        assert docs.status_code == 200 and "persistAuthorization" in docs.text
        (inline,) = re.findall(r"<script>(.*?)</script>", docs.text, re.S)
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in docs.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
        error_of(client.get("/api/sessions/x"), 401, "unauthorized")


# -- server paths in errors -------------------------------------------------------------------------------
def test_errors_show_paths_relative_to_the_data_folder(client: TestClient, data_dir: Path) -> None:
    """onnxruntime names the file it cannot load; the client sees where it is in the data folder, never
    where the data folder is."""
    graph = helper.make_graph(
        [helper.make_node("Frob", ["x"], ["y"], domain="my.ops")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.ops", 1)])
    r = client.post("/api/sessions", files={"file": ("m.onnx", model.SerializeToString())})
    sid = r.json()["id"]
    folders = {str(data_dir.absolute()), str(data_dir.resolve()), str(Path(sys.prefix))}
    for route, shown in (("run", "staging/"), ("compare", f"sessions/{sid}/original/m.onnx")):
        error = error_of(client.post(f"/api/sessions/{sid}/{route}"), 422, "model_not_runnable")
        assert shown in error["message"] and not any(folder in json.dumps(error) for folder in folders), error


def test_a_failed_jobs_trace_shows_no_server_folder(data_dir: Path) -> None:
    """A job's own bug is reported with a short trace: its files are named from the source folder or the
    Python installation, not by where those are on the server."""
    with make_client(data_dir) as client:
        runner = client.app.state.jobs

        def broken(job: Any) -> dict[str, Any]:
            raise OSError(f"cannot read {job.folder / 'x.npz'}")

        job_id = runner.submit(broken, kind="test")
        deadline = time.monotonic() + 30
        while (state := client.get(f"/api/jobs/{job_id}").json())["state"] not in ("failed", "succeeded"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    text = json.dumps(state["error"])
    assert state["state"] == "failed" and "x.npz" in text and "<app>/app/server/jobs.py" in text, text
    for folder in (str(data_dir.resolve()), str(Path(__file__).resolve().parents[2]), sys.prefix):
        assert folder not in text, text
