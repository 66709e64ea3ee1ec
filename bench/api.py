"""Benchmark of the web service on loopback: upload-to-graph time and edits per second.

    python bench/api.py [--quick]

Starts real `onnx-workbench serve` processes (1 and 2 workers) on free 127.0.0.1 ports with
temporary data folders, and prints medians:
  * upload-to-graph: POST /api/sessions then GET .../graph (gzip), for the 22 MB minilm_l6_int8
    fixture and a generated 20,000-node model with about 500 MB of weights; then one small edit and
    the download of the edited model;
  * edits per second: small edits (rename_node back and forth) sent back to back over keep-alive
    connections for a fixed time, on one session and on ten sessions (one client thread each).
Every loop is bounded in count and time; nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.api.models import chain_model  # noqa: E402
from tests.api.server_process import ServerProcess  # noqa: E402
from tests.fixture_models import fixture_path  # noqa: E402


def server_rss(server: ServerProcess) -> int:
    """Resident memory of the server and its worker processes, in bytes."""
    assert server.proc is not None
    return tree_rss(server.proc.pid)


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    parent = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])


def upload_to_graph(server: ServerProcess, model: Path) -> tuple[float, float, int, float, float]:
    """Seconds for the upload and for the graph view after it, nodes in the view, then seconds for one
    small edit and for downloading the edited model (the figures onnx-modifier was measured on)."""
    with httpx.Client(base_url=server.url, timeout=600) as client:
        started = time.perf_counter()
        with open(model, "rb") as f:
            r = client.post("/api/sessions", files={"file": (model.name, f)})
        r.raise_for_status()
        uploaded = time.perf_counter()
        sid = r.json()["id"]
        view = client.get(f"/api/sessions/{sid}/graph", headers={"Accept-Encoding": "gzip"})
        view.raise_for_status()
        done = time.perf_counter()
        nodes = view.json()["graph"]["nodes"]
        edit = {"op": "rename_node", "node": nodes[len(nodes) // 2]["id"], "to": "bench_renamed"}
        edit_started = time.perf_counter()
        client.post(f"/api/sessions/{sid}/edits", json={"edits": [edit]}).raise_for_status()
        edited = time.perf_counter()
        size = 0
        with client.stream("GET", f"/api/sessions/{sid}/model") as download:
            download.raise_for_status()
            for chunk in download.iter_bytes():
                size += len(chunk)
        downloaded = time.perf_counter()
        client.delete(f"/api/sessions/{sid}")
    return uploaded - started, done - uploaded, len(nodes), edited - edit_started, downloaded - edited


def rename_edits(
    client: httpx.Client, sid: str, node: str, done: Callable[[], bool], pause: float = 0.0
) -> list[float]:
    """Seconds of each small edit (the node renamed back and forth) until done() or 100,000 edits,
    sleeping `pause` seconds between them (0: back to back); an even count, so the node keeps its name."""
    names = [node, "bench_renamed"]
    seconds: list[float] = []
    while len(seconds) % 2 or (not done() and len(seconds) < 100_000):
        edit = {"op": "rename_node", "node": names[len(seconds) % 2], "to": names[(len(seconds) + 1) % 2]}
        started = time.perf_counter()
        r = client.post(f"/api/sessions/{sid}/edits", json={"edits": [edit]})
        seconds.append(time.perf_counter() - started)
        if r.status_code != 200:
            raise RuntimeError(r.text)
        time.sleep(pause)
    return seconds


def edits_per_second(server: ServerProcess, model: Path, sessions: int, seconds: float) -> float:
    """Small edits acknowledged per second over `sessions` sessions, one client thread each."""
    with httpx.Client(base_url=server.url, timeout=120) as setup:
        ids = []
        for _ in range(sessions):
            with open(model, "rb") as f:
                ids.append(setup.post("/api/sessions", files={"file": (model.name, f)}).json()["id"])
        node = setup.get(f"/api/sessions/{ids[0]}/graph").json()["graph"]["nodes"][0]["id"]
    counts = [0] * sessions
    barrier = threading.Barrier(sessions + 1)
    deadline = [0.0]

    def work(k: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            barrier.wait()
            counts[k] = len(rename_edits(client, ids[k], node, lambda: time.perf_counter() >= deadline[0]))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(sessions)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    barrier.wait()
    for t in threads:
        t.join(seconds + 120)
    elapsed = time.perf_counter() - started
    with httpx.Client(base_url=server.url, timeout=60) as cleanup:
        for sid in ids:
            cleanup.delete(f"/api/sessions/{sid}")
    return sum(counts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition, short edit runs, no 500 MB model")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    edit_seconds = 2.0 if args.quick else 5.0
    work = Path(tempfile.mkdtemp(prefix="onnx-workbench-bench-"))
    minilm = fixture_path("minilm_l6_int8")
    models = [("minilm_l6_int8 (22 MB)", minilm)]
    if not args.quick:
        started = time.perf_counter()
        big = chain_model(work / "chain_20k_500mb.onnx", 20_000, width=512, matmul_every=40)
        size = big.stat().st_size
        print(f"generated {big.name}: {size / 1e6:.0f} MB, 20,000 nodes ({time.perf_counter() - started:.1f} s)")
        models.append((f"generated 20,000 nodes ({size / 1e6:.0f} MB)", big))
    rows = []
    for workers in (1, 2):
        data = work / f"data-{workers}"
        data.mkdir()
        with ServerProcess(data, workers=workers) as server:
            for label, model in models:
                runs = [upload_to_graph(server, model) for _ in range(repeat)]
                up = statistics.median(r[0] for r in runs)
                graph = statistics.median(r[1] for r in runs)
                rows.append(
                    (
                        workers,
                        f"upload-to-graph {label}",
                        f"{up + graph:.2f} s (upload {up:.2f} s + graph {graph:.2f} s, {runs[0][2]} nodes)",
                    )
                )
                print(rows[-1], flush=True)
                one_edit = statistics.median(r[3] for r in runs)
                download = statistics.median(r[4] for r in runs)
                rows.append(
                    (workers, f"then one edit / download, {label}", f"{one_edit * 1000:.0f} ms / {download:.2f} s")
                )
                print(rows[-1], flush=True)
            rows.append((workers, "server RSS after uploads", f"{server_rss(server) / 1e6:.0f} MB"))
            for sessions in (1, 10):
                rates = [edits_per_second(server, minilm, sessions, edit_seconds) for _ in range(repeat)]
                rows.append(
                    (
                        workers,
                        f"edits/s, {sessions} session{'s' if sessions > 1 else ''} (minilm)",
                        f"{statistics.median(rates):.0f}",
                    )
                )
                print(rows[-1], flush=True)
    print("\n| workers | measurement | median |\n|---|---|---|")
    for workers, what, value in rows:
        print(f"| {workers} | {what} | {value} |")


if __name__ == "__main__":
    main()
