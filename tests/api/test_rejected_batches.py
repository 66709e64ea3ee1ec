"""A rejected edit batch leaves the session exactly as it was, over the HTTP API of a real server process.

Batches of 1-300 edits on a real model (renames, attributes, initializers, inserted and deleted
nodes, rewiring, outputs, shapes) with one invalid edit at a random place: the answer is a 4xx in
the error shape naming that edit, and the session's model, version, history, edit script and files
on disk are byte-equal to before, in the running server and after a restart or a `kill -9`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import onnx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fixture_models import fixture_path

from .conftest import error_of
from .edit_batches import batch_with_one_invalid, non_finite
from .server_process import ServerProcess

MODEL = "ppocr_cls_v2"  # 566 nodes, 0.6 MB: real, and quick to edit
EXAMPLES = 20
# each example posts up to 300 edits to a server: no shrinking, the failure names the refused edit
PROPERTY = settings(
    deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate], suppress_health_check=list(HealthCheck)
)
# a snapshot every two log lines: the restarts restore from a snapshot and replay the log after it
ENV = {"ONNX_WORKBENCH_SNAPSHOT_EVERY": "2"}
SETUP = [
    {"op": "rename_node", "node": "Conv@0", "to": "stem"},
    {"op": "set_attribute", "node": "HardSigmoid@0", "name": "alpha", "value": 0.25},
    {"op": "rename_tensor", "tensor": "x", "to": "image"},
    {"op": "set_shape", "tensor": "image", "shape": [1, 3, 48, 192]},
]
VOLATILE = {"last_used", "lock"}  # touched by every request


class Service:
    """A server process on a data folder, restartable on it, and one session opened on the real model."""

    def __init__(self, data: Path):
        self.data = data
        self.server = ServerProcess(data, env=ENV).start()
        self.client = httpx.Client(base_url=self.server.url, timeout=120)
        path = fixture_path(MODEL)
        r = self.client.post("/api/sessions", files={"file": (path.name, path.read_bytes())})
        assert r.status_code == 201, r.text
        self.sid = r.json()["id"]
        self.folder = data / "sessions" / self.sid

    def restart(self, kill: bool) -> None:
        self.client.close()
        self.server.kill() if kill else self.server.stop()
        self.server.stop()
        self.server = ServerProcess(self.data, env=ENV).start()
        self.client = httpx.Client(base_url=self.server.url, timeout=120)

    def close(self) -> None:
        self.client.close()
        self.server.stop()

    def edits(self, edits: list[Any]) -> httpx.Response:
        """POST edits as Python writes JSON: a NaN goes out as the bare token NaN, as a careless script sends it."""
        return self.client.post(
            f"/api/sessions/{self.sid}/edits",
            content=json.dumps({"edits": edits}),
            headers={"content-type": "application/json"},
        )

    def get(self, route: str) -> bytes:
        r = self.client.get(f"/api/sessions/{self.sid}{route}")
        assert r.status_code == 200, r.text
        return r.content

    def model(self) -> onnx.ModelProto:
        """The session's model as it stands: what the edits of a batch are drawn against."""
        return onnx.load_from_string(self.get("/model"))

    def state(self) -> dict[str, Any]:
        """Everything a refused request must leave as it was, as bytes. The session's cached exports are
        removed first, so the model is serialized from the document the server holds in memory."""
        shutil.rmtree(self.folder / "exports", ignore_errors=True)
        files = {
            p.relative_to(self.folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(self.folder.rglob("*"))
            if p.is_file() and p.name not in VOLATILE
        }
        return {
            "info": self.get(""),
            "history": self.get("/history"),
            "script": self.get("/script"),
            "model": self.get("/model"),
            "files": files,
        }


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The session has applied, undone and snapshotted edits before the batches come."""
    service = Service(tmp_path_factory.mktemp("rejected") / "data")
    try:
        for edits in (SETUP[:3], SETUP[3:]):
            assert service.edits(edits).status_code == 200
        assert service.client.post(f"/api/sessions/{service.sid}/undo").status_code == 200
        assert (service.folder / "snapshots").exists()
        yield service
    finally:
        service.close()


def assert_refused(response: httpx.Response, edits: list[Any], position: int) -> None:
    """A 4xx in the error shape; an edit the engine refused is named by its index in the batch."""
    assert 400 <= response.status_code < 500, response.text
    error = error_of(response, response.status_code)
    if error["code"] != "invalid_request" and len(edits) > 1:
        assert error["details"].get("edit_index") == position, (error, edits[position])


@pytest.mark.slow
def test_a_rejected_batch_changes_nothing_also_after_a_restart(service: Service) -> None:
    before = service.state()

    @settings(PROPERTY, max_examples=EXAMPLES)
    @given(batch_with_one_invalid(service.model()))
    def rejected(batch: tuple[list[Any], int]) -> None:
        edits, position = batch
        assert_refused(service.edits(edits), edits, position)
        assert service.state() == before

    rejected()
    service.restart(kill=False)
    assert service.state() == before


@pytest.mark.slow
def test_a_session_survives_a_rejected_300_edit_batch_and_a_kill(service: Service) -> None:
    """Killed right after the refusal, and killed after the next edit, which lands on the state before."""
    routes = ("/model", "/history", "/script", "")
    batches = batch_with_one_invalid(service.model(), sizes=st.just(300), applied=200)

    @settings(PROPERTY, max_examples=1)
    @given(batches, batches)
    def rejected_then_killed(first: tuple[list[Any], int], second: tuple[list[Any], int]) -> None:
        before = {route: service.get(route) for route in routes}
        assert_refused(service.edits(first[0]), *first)
        service.restart(kill=True)
        assert {route: service.get(route) for route in routes} == before

        assert_refused(service.edits(second[0]), *second)
        r = service.edits([{"op": "rename_node", "node": "stem", "to": "after the kill"}])
        assert r.status_code == 200, r.text
        after = {route: service.get(route) for route in routes}
        assert after["/model"] != before["/model"]
        assert json.loads(after["/history"])["done"][-1]["to"] == "after the kill"
        service.restart(kill=True)
        assert {route: service.get(route) for route in routes} == after

    rejected_then_killed()


@pytest.mark.slow
def test_a_number_that_is_not_finite_is_refused_like_any_invalid_edit(service: Service) -> None:
    """NaN and infinities in attribute or tensor values, anywhere in a batch."""
    before = service.state()

    @settings(PROPERTY, max_examples=5)
    @given(batch_with_one_invalid(service.model(), invalid=(non_finite,)))
    def rejected(batch: tuple[list[Any], int]) -> None:
        edits, position = batch
        assert_refused(service.edits(edits), edits, position)
        assert service.state() == before

    rejected()
