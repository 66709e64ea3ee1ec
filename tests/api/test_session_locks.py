"""The per-session thread locks: bounded by the sessions in use, and still mutually exclusive."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.server.errors import ServiceError as ApiError
from app.server.session_store import LocalSessionStore
from app.server.settings import Settings

from .conftest import error_of, make_client, upload


def test_unknown_session_ids_leave_the_lock_table_empty(data_dir: Path, fixture_model) -> None:
    store = LocalSessionStore(Settings(data_dir=data_dir))
    for i in range(20_000):
        with pytest.raises(ApiError):
            with store.open(f"{i:040d}"):
                pass
    assert store._locks == {}
    with make_client(data_dir) as client:
        sid = upload(client, fixture_model("logreg_iris"))
        for i in range(300):
            error_of(client.get(f"/api/sessions/{i:040d}"), 404, "unknown_session")
            error_of(client.post(f"/api/sessions/{i:040d}/edits", json={"edits": []}), 404)
        assert client.get(f"/api/sessions/{sid}").status_code == 200
        assert client.app.state.store._locks == {}


def test_two_threads_on_one_session_take_turns(data_dir: Path, fixture_model) -> None:
    with make_client(data_dir) as client:
        sid = upload(client, fixture_model("logreg_iris"))
        store = client.app.state.store
        first_in, release, second_in = threading.Event(), threading.Event(), threading.Event()

        def first() -> None:
            with store.open(sid):
                first_in.set()
                release.wait(10)

        def second() -> None:
            first_in.wait(10)
            with store.open(sid):
                second_in.set()

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        assert first_in.wait(10)
        time.sleep(0.3)
        assert not second_in.is_set()  # waits while the first holds the session
        assert list(store._locks) == [sid] and store._locks[sid].users == 2
        release.set()
        assert second_in.wait(10)
        for t in threads:
            t.join(10)
        assert store._locks == {}


def test_the_thread_lock_excludes_while_entries_come_and_go(data_dir: Path) -> None:
    """Many threads on a few ids, entries created and dropped all the time: never two holders of one id."""
    store = LocalSessionStore(Settings(data_dir=data_dir))
    holders = {f"{k:032d}": 0 for k in range(3)}
    overlaps: list[str] = []

    def work(seed: int) -> None:
        for i in range(300):
            key = f"{(seed + i) % 3:032d}"
            with store._thread_lock(key):
                holders[key] += 1
                if holders[key] != 1:
                    overlaps.append(key)
                time.sleep(0)
                holders[key] -= 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert overlaps == [] and store._locks == {}
