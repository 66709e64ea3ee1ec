"""The service as users run it: a real uvicorn process, killed with SIGKILL mid-stream, and two workers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.memory import peak_rss_growth

from .models import external_weights_model
from .server_process import ServerProcess


def _open(url: str, model: Path) -> str:
    r = httpx.post(url + "/api/sessions", files={"file": (model.name, model.read_bytes())}, timeout=60)
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.mark.slow
def test_sigkill_during_a_stream_of_edits_loses_no_acknowledged_edit(tmp_path: Path, fixture_model) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server = ServerProcess(data).start()
    try:
        sid = _open(server.url, fixture_model("ppocrv4_det"))
        ids = [
            n["id"] for n in httpx.get(f"{server.url}/api/sessions/{sid}/graph", timeout=60).json()["graph"]["nodes"]
        ]
        acknowledged: list[str] = []
        stop = threading.Event()

        def stream() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                for i, node in enumerate(ids[:300]):
                    if stop.is_set():
                        return
                    try:
                        r = client.post(
                            f"/api/sessions/{sid}/edits",
                            json={"edits": [{"op": "rename_node", "node": node, "to": f"k{i}"}]},
                        )
                    except httpx.HTTPError:
                        return  # the server died under this request: not acknowledged
                    if r.status_code == 200:
                        acknowledged.append(f"k{i}")
                    else:
                        return

        sender = threading.Thread(target=stream)
        sender.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 40 and time.monotonic() < deadline and sender.is_alive():
            time.sleep(0.01)
        server.kill()  # mid-stream: a request is very likely in flight
        stop.set()
        sender.join(30)
        assert len(acknowledged) >= 40
    finally:
        server.stop()
    with ServerProcess(data) as again:
        done = [e["to"] for e in httpx.get(f"{again.url}/api/sessions/{sid}/history", timeout=60).json()["done"]]
        assert done[: len(acknowledged)] == acknowledged
        assert len(done) <= len(acknowledged) + 1  # at most the one in flight, written but never answered
        r = httpx.post(f"{again.url}/api/sessions/{sid}/undo", timeout=60)
        assert r.status_code == 200 and r.json()["edit"]["to"] == done[-1]


@pytest.mark.slow
def test_two_workers_share_sessions_without_diverging(tmp_path: Path, fixture_model) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with ServerProcess(data, workers=2) as server:
        pids = set()
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:  # a fresh connection may land on either worker
            with httpx.Client() as fresh:
                pids.add(fresh.get(server.url + "/healthz").json()["pid"])
        assert len(pids) == 2, "both workers should answer"
        sessions = [_open(server.url, fixture_model("ppocrv4_det")) for _ in range(2)]
        ids = [
            n["id"]
            for n in httpx.get(f"{server.url}/api/sessions/{sessions[0]}/graph", timeout=60).json()["graph"]["nodes"]
        ]
        errors: list[str] = []

        def writer(sid: str, offset: int) -> None:
            version = 0
            for i in range(30):
                with httpx.Client(timeout=30) as fresh:  # new connection: either worker
                    body = {
                        "edits": [{"op": "rename_node", "node": ids[offset + i], "to": f"w{offset + i}"}],
                        "expected_version": version,
                    }
                    r = fresh.post(f"{server.url}/api/sessions/{sid}/edits", json=body)
                    if r.status_code != 200:
                        errors.append(r.text)
                        return
                    version = r.json()["version"]
                    seen = fresh.get(f"{server.url}/api/sessions/{sid}").json()["version"]
                    if seen != version:
                        errors.append(f"read version {seen} after writing {version}")

        threads = [threading.Thread(target=writer, args=(sid, k * 100)) for k, sid in enumerate(sessions)]
        for t in threads[:2]:
            t.start()
        for t in threads[:2]:
            t.join(120)
        assert errors == []
        for k, sid in enumerate(sessions):
            done = httpx.get(f"{server.url}/api/sessions/{sid}/history", timeout=30).json()["done"]
            assert [e["to"] for e in done] == [f"w{k * 100 + i}" for i in range(30)]
        stale = httpx.post(
            f"{server.url}/api/sessions/{sessions[0]}/edits",
            json={"edits": [{"op": "rename_node", "node": ids[250], "to": "late"}], "expected_version": 5},
            timeout=30,
        )
        assert stale.status_code == 409 and stale.json()["error"]["details"]["version"] == 30


@pytest.mark.slow
def test_uploads_stream_to_disk_and_weights_stay_there(tmp_path: Path) -> None:
    """400 MB of external weights go through upload, graph view and download; the server's memory
    never grows by anything near that."""
    model, data = external_weights_model(tmp_path, 400)
    folder = tmp_path / "data"
    folder.mkdir()
    with ServerProcess(folder) as server:
        assert server.proc is not None
        with peak_rss_growth(server.proc.pid) as growth:
            with (
                httpx.Client(base_url=server.url, timeout=120) as client,
                open(model, "rb") as m,
                open(data, "rb") as d,
            ):
                r = client.post("/api/sessions", files=[("file", (model.name, m)), ("data", (data.name, d))])
                assert r.status_code == 201, r.text
                sid = r.json()["id"]
                assert r.json()["summary"]["weights_bytes"] >= 400 << 20
                view = client.get(f"/api/sessions/{sid}/graph").json()
                assert view["graph"]["initializers"]["W"]["stats"]["mean"] == 1.0
                size = 0
                with client.stream("GET", f"/api/sessions/{sid}/model") as download:
                    for chunk in download.iter_bytes():
                        size += len(chunk)
                assert size > 400 << 20  # a zip of the model and its data file
        assert growth[0] < 150 << 20, f"server memory grew by {growth[0] >> 20} MB"
