"""Durability: every acknowledged edit survives a restart, snapshots restore with their history,
and several processes on one data folder never diverge (simulated here by several apps)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from .conftest import error_of, make_client, upload
from .test_edits import edit, nodes, state


def test_restart_keeps_edits_and_history(data_dir: Path, fixture_model) -> None:
    with make_client(data_dir) as first:
        sid = upload(first, fixture_model("ppocrv4_det"))
        original = state(first, sid)[2]
        ids = [n["id"] for n in nodes(first, sid)[:3]]
        for i, node in enumerate(ids):
            assert edit(first, sid, {"op": "rename_node", "node": node, "to": f"n{i}"}).status_code == 200
        first.post(f"/api/sessions/{sid}/undo")
        before = state(first, sid)
    with make_client(data_dir) as second:
        assert state(second, sid) == before
        assert second.post(f"/api/sessions/{sid}/redo").json()["edit"]["to"] == "n2"
        for _ in range(3):
            assert second.post(f"/api/sessions/{sid}/undo").status_code == 200
        assert state(second, sid)[2] == original


def test_snapshots_restore_fast_and_keep_undo_history(data_dir: Path, fixture_model) -> None:
    with make_client(data_dir, snapshot_every=3) as first:
        sid = upload(first, fixture_model("ppocrv4_det"))
        original = state(first, sid)[2]
        ids = [n["id"] for n in nodes(first, sid)[:7]]
        for i, node in enumerate(ids):
            edit(first, sid, {"op": "rename_node", "node": node, "to": f"s{i}"})
        before = state(first, sid)
        snaps = list((data_dir / "sessions" / sid / "snapshots").iterdir())
        assert [s.name for s in snaps] == ["000000000006"]  # older snapshots are removed
    with make_client(data_dir, snapshot_every=3) as second:
        assert state(second, sid) == before
        for _ in range(7):
            assert second.post(f"/api/sessions/{sid}/undo").status_code == 200
        error_of(second.post(f"/api/sessions/{sid}/undo"), 409, "nothing_to_undo")
        assert state(second, sid)[2] == original


def test_snapshot_of_a_model_with_external_data_keeps_its_weights(data_dir: Path, external_model: list[Path]) -> None:
    with make_client(data_dir, snapshot_every=2) as first:
        sid = upload(first, *external_model)
        original = state(first, sid)[2]
        graph = first.get(f"/api/sessions/{sid}/graph").json()["graph"]
        name, info = min(
            ((n, i) for n, i in graph["initializers"].items() if i["external"] and i["dtype"] == "int8"),
            key=lambda item: math.prod(item[1]["shape"]),
        )
        value = np.ones(info["shape"], np.int8).tolist()
        assert edit(first, sid, {"op": "set_initializer", "name": name, "value": value}).status_code == 200
        first_node = graph["nodes"][0]["id"]
        for i in range(3):
            edit(first, sid, {"op": "rename_node", "node": first_node if i == 0 else f"r{i - 1}", "to": f"r{i}"})
        before = state(first, sid)
    with make_client(data_dir, snapshot_every=2) as second:
        assert state(second, sid) == before
        for _ in range(4):
            assert second.post(f"/api/sessions/{sid}/undo").status_code == 200
        assert state(second, sid)[2] == original


def test_a_torn_last_log_line_is_dropped(data_dir: Path, fixture_model) -> None:
    with make_client(data_dir) as first:
        sid = upload(first, fixture_model("logreg_iris"))
        edit(first, sid, {"op": "rename_node", "node": "ZipMap", "to": "zm"})
        before = state(first, sid)
    log = data_dir / "sessions" / sid / "log.jsonl"
    with open(log, "ab") as f:
        f.write(b'{"op":"apply","edits":[{"op":"rename_node","node":"zm","to":"half')  # a writer died here
    with make_client(data_dir) as second:
        assert state(second, sid) == before
        assert edit(second, sid, {"op": "rename_node", "node": "zm", "to": "whole"}).status_code == 200
    with make_client(data_dir) as third:
        assert [e["to"] for e in third.get(f"/api/sessions/{sid}/history").json()["done"]] == ["zm", "whole"]


def test_two_processes_on_one_data_folder_stay_in_step(data_dir: Path, fixture_model) -> None:
    with make_client(data_dir) as a, make_client(data_dir) as b:
        sid = upload(a, fixture_model("ppocrv4_det"))
        ids = [n["id"] for n in nodes(a, sid)[:4]]
        assert edit(a, sid, {"op": "rename_node", "node": ids[0], "to": "by_a"}, expected=0).status_code == 200
        assert nodes(b, sid)[0]["name"] == "by_a"  # b catches up with the log before answering
        assert edit(b, sid, {"op": "rename_node", "node": ids[1], "to": "by_b"}, expected=1).status_code == 200
        error_of(
            edit(a, sid, {"op": "rename_node", "node": ids[2], "to": "stale"}, expected=1), 409, "version_conflict"
        )
        assert a.post(f"/api/sessions/{sid}/undo").json()["edit"]["to"] == "by_b"
        assert b.get(f"/api/sessions/{sid}/history").json()["undone"][0]["to"] == "by_b"
        assert state(a, sid) == state(b, sid)
        assert b.delete(f"/api/sessions/{sid}").status_code == 204
        error_of(a.get(f"/api/sessions/{sid}"), 404, "unknown_session")


def test_log_lines_are_on_disk_before_the_answer(client: TestClient, open_session) -> None:
    sid = open_session("logreg_iris")
    log = client.app.state.store.sessions / sid / "log.jsonl"
    edit(client, sid, {"op": "rename_node", "node": "ZipMap", "to": "z1"})
    client.post(f"/api/sessions/{sid}/undo")
    lines = log.read_text().splitlines()
    assert [line.split('"op":')[1][:7] for line in lines] == ['"apply"', '"undo",']
    assert hashlib.sha256(log.read_bytes()).hexdigest()  # plain JSON lines, readable by any tool


def test_evicted_documents_come_back_from_disk_with_their_history(data_dir: Path, fixture_model) -> None:
    with make_client(data_dir, cache_bytes=1) as client:  # room for one open document at a time
        a = upload(client, fixture_model("logreg_iris"))
        b = upload(client, fixture_model("logreg_iris"))
        edit(client, a, {"op": "rename_node", "node": "ZipMap", "to": "in_a"})
        edit(client, b, {"op": "rename_node", "node": "ZipMap", "to": "in_b"})
        assert list(client.app.state.store._cache) == [b]
        assert client.post(f"/api/sessions/{a}/undo").json()["edit"]["to"] == "in_a"
        assert client.get(f"/api/sessions/{b}/history").json()["done"][0]["to"] == "in_b"
        assert len(client.app.state.store._cache) == 1
