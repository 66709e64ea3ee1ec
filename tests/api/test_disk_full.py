"""A full disk answers 507 and changes nothing: a real server whose data folder is a small tmpfs.

The tmpfs is mounted in a private mount namespace held open by a `sleep`-like process (`cat` on a
pipe, so it ends with the test); the server runs in that namespace through nsenter and the test
reaches the folder through /proc/<holder>/root. Needs root (CI runs as root); skipped elsewhere.
A file size limit (prlimit, no root needed) gives EFBIG, which is answered the same way.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest

from tests.graph.builders import matmul_model

from .server_process import ServerProcess
from .test_data import npy

TMPFS_BYTES = 24 << 20


@dataclass
class SmallDisk:
    data_dir: Path  # the server's path
    seen: Path  # the same folder as this process reaches it
    prefix: list[str]  # runs a command in the namespace where data_dir is the tmpfs

    def fill(self) -> None:
        """Write a filler file until not even one more byte fits."""
        chunk = 1 << 20
        with open(self.seen / "filler", "wb", buffering=0) as f:
            while chunk:
                try:
                    f.write(bytes(chunk))
                except OSError:
                    chunk //= 2

    def free(self) -> None:
        (self.seen / "filler").unlink()


@contextmanager
def mounted(tmp_path: Path, options: str) -> Iterator[SmallDisk]:
    """A tmpfs with these mount options as `tmp_path/data`, seen by servers started with its prefix."""
    data = tmp_path / "data"
    data.mkdir()
    try:
        holder = subprocess.Popen(
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                f'mount -t tmpfs -o {options} tmpfs "$0" && echo ready && exec cat',
                str(data),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    assert holder.stdin and holder.stdout and holder.stderr
    if holder.stdout.readline() != b"ready\n":
        holder.wait(10)
        pytest.skip(f"no tmpfs in a private mount namespace here: {holder.stderr.read().decode()[:200]}")
    try:
        yield SmallDisk(
            data,
            Path(f"/proc/{holder.pid}/root") / data.relative_to("/"),
            ["nsenter", "-t", str(holder.pid), "-m", "--"],
        )
    finally:
        holder.stdin.close()
        holder.wait(10)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with mounted(tmp_path, f"size={TMPFS_BYTES}") as disk:
        yield disk


def server(disk: SmallDisk, env: dict[str, str] | None = None) -> ServerProcess:
    return ServerProcess(disk.data_dir, prefix=disk.prefix, env=env).start()


def state_of(url: str, sid: str, disk: SmallDisk) -> dict[str, Any]:
    """Everything a client sees of the session, and its log on disk."""
    info = httpx.get(f"{url}/api/sessions/{sid}").json()
    graph = httpx.get(f"{url}/api/sessions/{sid}/graph").content
    graph = gzip.decompress(graph) if graph[:2] == b"\x1f\x8b" else graph
    return {
        "info": info,
        "history": httpx.get(f"{url}/api/sessions/{sid}/history").json(),
        "graph": json.loads(graph),
        "log": (disk.seen / "sessions" / sid / "log.jsonl").read_bytes(),
    }


def assert_disk_full(r: httpx.Response) -> None:
    assert r.status_code == 507, r.text
    error = r.json()["error"]
    assert error["code"] == "insufficient_storage" and "disk is full" in error["message"]
    assert "/" not in error["message"]  # no server paths


def test_full_disk_answers_507_and_leaves_the_session_as_it_was(small_disk: SmallDisk, tmp_path: Path) -> None:
    model = tmp_path / "mm.onnx"
    onnx.save(matmul_model(np.ones((4, 3), np.float32)), model)
    first = server(small_disk)
    try:
        url = first.url
        r = httpx.post(f"{url}/api/sessions", files={"file": ("mm.onnx", model.read_bytes())})
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        rename = {"edits": [{"op": "rename_node", "node": "mm", "to": "first"}]}
        assert httpx.post(f"{url}/api/sessions/{sid}/edits", json=rename).status_code == 200
        before = state_of(url, sid, small_disk)
        assert before["info"]["version"] == 1

        small_disk.fill()
        assert_disk_full(httpx.post(f"{url}/api/sessions", files={"file": ("mm.onnx", model.read_bytes())}))
        long_name = {"edits": [{"op": "rename_node", "node": "first", "to": "n" * 6000}]}  # past the log's last page
        assert_disk_full(httpx.post(f"{url}/api/sessions/{sid}/edits", json=long_name))
        assert_disk_full(
            httpx.put(
                f"{url}/api/sessions/{sid}/tensors/W.npy",
                content=npy(np.zeros((4, 3), np.float32)),
                headers={"content-type": "application/octet-stream"},
            )
        )
        assert_disk_full(httpx.post(f"{url}/api/sessions/{sid}/quant", data={"random": "2"}))
        assert_disk_full(httpx.get(f"{url}/api/sessions/{sid}/model"))  # the download is saved first
        assert state_of(url, sid, small_disk) == before
        assert httpx.get(f"{url}/healthz").status_code == 200
    finally:
        first.stop()

    with server(small_disk) as again:  # restarted on the full disk
        assert state_of(again.url, sid, small_disk) == before
        small_disk.free()
        r = httpx.post(f"{again.url}/api/sessions/{sid}/edits", json=long_name)
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 2
        after = state_of(again.url, sid, small_disk)
    with server(small_disk) as third:
        assert state_of(third.url, sid, small_disk) == after
        assert after["history"]["done"][-1]["to"] == "n" * 6000


def test_a_snapshot_that_does_not_fit_does_not_fail_the_logged_edit(tmp_path: Path) -> None:
    """Out of inodes, the log line still fits in its file but a snapshot's folder does not: the edit is
    durable, so it answers 200 (not a 507 that a restart would contradict) and the snapshot waits."""
    model = tmp_path / "mm.onnx"
    onnx.save(matmul_model(np.ones((4, 3), np.float32)), model)
    with mounted(tmp_path, "size=24m,nr_inodes=400") as disk:
        with server(disk, {"ONNX_WORKBENCH_SNAPSHOT_EVERY": "1"}) as first:
            sid = httpx.post(f"{first.url}/api/sessions", files={"file": ("mm.onnx", model.read_bytes())}).json()["id"]
            (disk.seen / "fill").mkdir()
            with pytest.raises(OSError):
                for i in range(1000):
                    (disk.seen / "fill" / str(i)).touch()
            r = httpx.post(
                f"{first.url}/api/sessions/{sid}/edits",
                json={"edits": [{"op": "rename_node", "node": "mm", "to": "renamed"}]},
            )
            assert r.status_code == 200, r.text
            assert not list((disk.seen / "sessions" / sid / "snapshots").glob("0*"))
            answered = state_of(first.url, sid, disk)
        shutil.rmtree(disk.seen / "fill")
        with server(disk) as again:
            assert state_of(again.url, sid, disk) == answered
            assert answered["info"]["version"] == 1


def test_a_file_size_limit_is_507_as_well(tmp_path: Path, fixture_model) -> None:
    """EFBIG (RLIMIT_FSIZE, which needs no root) is the same condition as a full disk: nothing more fits."""
    data = tmp_path / "data"
    data.mkdir()
    model = fixture_model("logreg_iris").read_bytes()
    with ServerProcess(data, prefix=["prlimit", f"--fsize={1 << 20}", "--"]) as limited:
        r = httpx.post(
            f"{limited.url}/api/sessions", files=[("file", ("m.onnx", model)), ("data", ("big.bin", bytes(2 << 20)))]
        )
        assert_disk_full(r)
        assert r.json()["error"]["details"]["errno"] == "EFBIG"
        packed = io.BytesIO()
        with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("m.onnx", model)
            zf.writestr("big.bin", bytes(2 << 20))  # fits while packed, not once unpacked
        assert_disk_full(httpx.post(f"{limited.url}/api/sessions", files={"file": ("m.zip", packed.getvalue())}))
        assert list((data / "staging").iterdir()) == []
        assert httpx.post(f"{limited.url}/api/sessions", files={"file": ("m.onnx", model)}).status_code == 201
