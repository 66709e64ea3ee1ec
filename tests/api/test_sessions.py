"""Uploading models into sessions, and everything an upload can get wrong."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import onnx
import pytest
from fastapi.testclient import TestClient

from app.server.session_store import SESSION_ID

from .conftest import error_of, make_client, upload


def test_upload_answers_201_with_random_id_and_summary(client: TestClient, fixture_model) -> None:
    path = fixture_model("ppocrv4_det")
    r = client.post("/api/sessions", files={"file": (path.name, path.read_bytes())})
    assert r.status_code == 201
    body = r.json()
    assert SESSION_ID.match(body["id"]) and len(body["id"]) >= 32  # 192 random bits, URL-safe
    assert r.headers["location"] == f"/api/sessions/{body['id']}"
    summary = body["summary"]
    assert summary["opset"] == {"ai.onnx": 12}
    assert summary["nodes"] == 672
    assert summary["inputs"][0]["name"] == "x" and summary["inputs"][0]["dtype"] == "float32"
    assert len(summary["inputs"][0]["shape"]) == 4
    assert summary["outputs"] and "producer" in summary
    other = upload(client, path)
    assert other != body["id"]


def test_get_and_delete_session(client: TestClient, open_session) -> None:
    sid = open_session("logreg_iris")
    info = client.get(f"/api/sessions/{sid}").json()
    assert info["id"] == sid and info["version"] == 0 and info["filename"] == "logreg_iris.onnx"
    assert info["can_undo"] is False and info["summary"]["nodes"] == 3
    assert client.delete(f"/api/sessions/{sid}").status_code == 204
    error_of(client.get(f"/api/sessions/{sid}"), 404, "unknown_session")
    error_of(client.delete(f"/api/sessions/{sid}"), 404, "unknown_session")
    assert not (client.app.state.store.sessions / sid).exists()


def test_unknown_and_malformed_session_ids_are_404(client: TestClient) -> None:
    error_of(client.get("/api/sessions/" + "A" * 32), 404, "unknown_session")
    error_of(client.get("/api/sessions/..%2F..%2Fetc"), 404)
    error_of(client.get("/api/sessions/x/graph"), 404, "unknown_session")


def test_sessions_are_private_and_independent(client: TestClient, open_session) -> None:
    a, b = open_session("logreg_iris"), open_session("logreg_iris")
    node = client.get(f"/api/sessions/{a}/graph").json()["graph"]["nodes"][0]["id"]
    r = client.post(f"/api/sessions/{a}/edits", json={"edits": [{"op": "rename_node", "node": node, "to": "mine"}]})
    assert r.status_code == 200
    assert client.get(f"/api/sessions/{a}").json()["version"] == 1
    assert client.get(f"/api/sessions/{b}").json()["version"] == 0


def test_not_onnx_is_422_with_a_message(client: TestClient) -> None:
    r = client.post("/api/sessions", files={"file": ("model.onnx", b"this is plain text, not a protobuf at all")})
    err = error_of(r, 422, "invalid_model_file")
    assert "not an ONNX model" in err["message"]
    assert list(client.app.state.store.sessions.iterdir()) == []
    assert list(client.app.state.store.staging.iterdir()) == []  # nothing left behind


def test_truncated_protobuf_is_422(client: TestClient, fixture_model) -> None:
    data = fixture_model("ppocrv4_det").read_bytes()
    err = error_of(client.post("/api/sessions", files={"file": ("cut.onnx", data[: len(data) // 2])}), 422)
    assert "cut.onnx" in err["message"]


def test_wrong_content_type_is_415(client: TestClient) -> None:
    err = error_of(client.post("/api/sessions", json={"file": "x"}), 415, "unsupported_media_type")
    assert "multipart/form-data" in err["message"]


def test_missing_file_part_is_422(client: TestClient) -> None:
    error_of(client.post("/api/sessions", files={"data": ("w.bin", b"123")}), 422, "missing_file")
    error_of(client.post("/api/sessions", files={"other": ("w.bin", b"123")}), 422, "unexpected_field")


def test_upload_over_the_limit_is_413_and_leaves_nothing(data_dir: Path, fixture_model) -> None:
    with make_client(data_dir, max_upload_bytes=100_000) as client:
        path = fixture_model("ppocrv4_det")  # 4.7 MB
        err = error_of(client.post("/api/sessions", files={"file": (path.name, path.read_bytes())}), 413, "too_large")
        assert "100,000" in err["message"]
        assert list(client.app.state.store.staging.iterdir()) == []


def test_external_data_upload_as_files_and_as_zip(client: TestClient, external_model: list[Path]) -> None:
    model, data = external_model
    sid = upload(client, model, data)
    assert client.get(f"/api/sessions/{sid}").json()["summary"]["external_data"] is True
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(model, "bundle/minilm.onnx")
        zf.write(data, "bundle/" + data.name)
    r = client.post("/api/sessions", files={"file": ("bundle.zip", buf.getvalue())})
    assert r.status_code == 201, r.text
    assert r.json()["summary"]["weights_bytes"] > 20_000_000


def test_missing_external_data_file_is_422(client: TestClient, external_model: list[Path]) -> None:
    model, _ = external_model
    err = error_of(
        client.post("/api/sessions", files={"file": (model.name, model.read_bytes())}), 422, "missing_external_data"
    )
    assert "upload it together with the model" in err["message"]


def _with_location(model: Path, location: str) -> bytes:
    proto = onnx.load(str(model), load_external_data=False)
    for tensor in proto.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
    return proto.SerializeToString()


@pytest.mark.parametrize("location", ["/etc/passwd", "../outside.data", "sub/../../x.data"])
def test_external_data_outside_the_session_folder_is_refused(
    client: TestClient, external_model: list[Path], location: str
) -> None:
    model, data = external_model
    r = client.post(
        "/api/sessions",
        files=[("file", ("m.onnx", _with_location(model, location))), ("data", (data.name, data.read_bytes()))],
    )
    err = error_of(r, 422, "unsafe_external_data")
    assert location in err["message"]


def test_external_data_through_a_symlink_is_refused(client: TestClient, external_model: list[Path]) -> None:
    model, data = external_model
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("m.onnx", _with_location(model, "link.data"))
        link = zipfile.ZipInfo("link.data")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    err = error_of(client.post("/api/sessions", files={"file": ("m.zip", buf.getvalue())}), 422, "bad_zip")
    assert "link" in err["message"]


@pytest.mark.parametrize("member", ["../evil.onnx", "/abs/evil.onnx", "a/../../evil.onnx"])
def test_zip_path_traversal_is_refused(client: TestClient, member: str, data_dir: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(member, b"x")
    err = error_of(client.post("/api/sessions", files={"file": ("m.zip", buf.getvalue())}), 400, "bad_file_name")
    assert member in err["message"]
    assert not (data_dir / "evil.onnx").exists() and not (data_dir.parent / "evil.onnx").exists()


def test_zip_bomb_is_refused(data_dir: Path) -> None:
    """One member of zeros; the ratio applies past 1 MiB here (past 256 MiB by default, see test_upload_limits)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m.onnx", b"\0" * (64 << 20))  # 64 MiB of zeros, about 64 KiB packed
    assert len(buf.getvalue()) < 1 << 20
    with make_client(data_dir, unpack_ratio_free_bytes=1 << 20) as client:
        err = error_of(client.post("/api/sessions", files={"file": ("m.zip", buf.getvalue())}), 422, "zip_bomb")
        assert "decompression bomb" in err["message"]
        assert list(client.app.state.store.staging.iterdir()) == []


def test_zip_with_two_models_or_none_is_refused(client: TestClient, fixture_model) -> None:
    data = fixture_model("logreg_iris").read_bytes()
    for names in (["a.onnx", "b.onnx"], ["readme.txt"]):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name in names:
                zf.writestr(name, data)
        err = error_of(client.post("/api/sessions", files={"file": ("m.zip", buf.getvalue())}), 422, "bad_zip")
        assert "exactly one .onnx" in err["message"]


def test_unsafe_file_names_in_multipart_are_refused(client: TestClient, fixture_model) -> None:
    data = fixture_model("logreg_iris").read_bytes()
    r = client.post("/api/sessions", files=[("file", ("m.onnx", data)), ("data", ("../../x.data", b"1"))])
    error_of(r, 400, "bad_file_name")


def test_token_protects_every_api_call(data_dir: Path, fixture_model) -> None:
    with make_client(data_dir, token="s3cret") as client:
        path = fixture_model("logreg_iris")
        files = {"file": (path.name, path.read_bytes())}
        err = error_of(client.post("/api/sessions", files=files), 401, "unauthorized")
        assert "Bearer" in err["message"]
        error_of(client.post("/api/sessions", files=files, headers={"Authorization": "Bearer wrong"}), 401)
        auth = {"Authorization": "Bearer s3cret"}
        r = client.post("/api/sessions", files=files, headers=auth)
        assert r.status_code == 201
        error_of(client.get(f"/api/sessions/{r.json()['id']}"), 401)
        assert client.get(f"/api/sessions/{r.json()['id']}", headers=auth).status_code == 200
        assert client.get("/healthz").status_code == 200  # health checks need no token


def test_idle_sessions_expire_and_their_files_go(data_dir: Path, fixture_model) -> None:
    with make_client(data_dir, session_ttl_seconds=60) as client:
        sid = upload(client, fixture_model("logreg_iris"))
        keep = upload(client, fixture_model("logreg_iris"))
        folder = client.app.state.store.sessions / sid
        old = os.stat(folder / "last_used").st_mtime - 120
        os.utime(folder / "last_used", (old, old))
        error_of(client.get(f"/api/sessions/{sid}"), 404, "session_expired")
        assert client.app.state.store.sweep() == [sid]
        assert not folder.exists()
        assert client.get(f"/api/sessions/{keep}").status_code == 200


def test_health_and_openapi(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["pid"] == os.getpid()
    spec = client.get("/openapi.json").json()
    assert "/api/sessions/{session_id}/edits" in spec["paths"]
    assert client.get("/docs").status_code == 200
    err = error_of(client.get("/api/nope"), 404, "not_found")
    assert "/api/nope" in err["message"]
    error_of(client.put("/healthz"), 405)
