"""The job runner, tested with trivial jobs through the real HTTP endpoints (quantization comes later)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.server.jobs import JobContext

from .conftest import error_of, make_client


def wait_for(client: TestClient, job_id: str, states: tuple[str, ...], timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job_id}").json()
        if state["state"] in states:
            return state
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {states}: {state}")


def counting_job(job: JobContext) -> dict[str, Any]:
    for i in range(5):
        job.check_cancelled()
        job.progress((i + 1) / 5, f"step {i + 1}")
    (job.folder / "report.txt").write_text("done")
    return {"steps": 5}


def test_job_runs_reports_progress_and_keeps_its_result_with_the_session(client: TestClient, open_session) -> None:
    sid = open_session("logreg_iris")
    job_id = client.app.state.jobs.submit(counting_job, session_id=sid, kind="count")
    state = wait_for(client, job_id, ("succeeded", "failed"))
    assert state["state"] == "succeeded", state
    assert state["result"] == {"steps": 5} and state["progress"] == 1.0 and state["message"] == "step 5"
    assert state["kind"] == "count" and state["session"] == sid and state["finished"] >= state["started"]
    folder = client.app.state.store.sessions / sid / "jobs"
    assert (folder / f"{job_id}.json").exists() and (folder / job_id / "report.txt").read_text() == "done"
    client.delete(f"/api/sessions/{sid}")
    error_of(client.get(f"/api/jobs/{job_id}"), 404, "unknown_job")  # results go with their session


def test_a_session_job_works_on_its_own_copy_of_the_current_model(client: TestClient, open_session) -> None:
    """The pattern for quantization jobs: lock briefly, take the current model out, work unlocked."""
    sid = open_session("logreg_iris")
    store = client.app.state.store
    client.post(f"/api/sessions/{sid}/edits", json={"edits": [{"op": "rename_node", "node": "ZipMap", "to": "zm"}]})

    def inspect_model(job: JobContext) -> dict[str, Any]:
        with store.open(sid) as handle:
            version = handle.doc.version
            model = handle.export_to(job.folder)
        import onnx

        return {"version": version, "nodes": [n.name for n in onnx.load(str(model)).graph.node]}

    job_id = client.app.state.jobs.submit(inspect_model, session_id=sid, kind="inspect")
    client.post(f"/api/sessions/{sid}/undo")  # later edits do not disturb the job's copy
    state = wait_for(client, job_id, ("succeeded", "failed"))
    assert state["state"] == "succeeded", state
    assert state["result"]["version"] in (1, 2) and len(state["result"]["nodes"]) == 3


def test_cancel_stops_a_running_job(client: TestClient) -> None:
    started = threading.Event()

    def waits(job: JobContext) -> None:
        started.set()
        job.progress(0.5, "waiting")
        job.cancel.wait(10)
        job.check_cancelled()

    job_id = client.app.state.jobs.submit(waits)
    assert started.wait(5)
    r = client.delete(f"/api/jobs/{job_id}")
    assert r.status_code == 200 and r.json()["cancel_requested"] is True
    assert wait_for(client, job_id, ("cancelled", "succeeded", "failed"))["state"] == "cancelled"
    assert client.delete(f"/api/jobs/{job_id}").json()["state"] == "cancelled"  # cancelling again is harmless


def test_a_failing_job_is_failed_not_a_server_error(client: TestClient) -> None:
    def breaks(job: JobContext) -> None:
        raise ValueError("bad calibration data")

    state = wait_for(client, client.app.state.jobs.submit(breaks), ("failed", "succeeded"))
    assert state["state"] == "failed" and "bad calibration data" in state["error"]["message"]


def test_job_state_as_server_sent_events(client: TestClient) -> None:
    gate = threading.Event()

    def slow(job: JobContext) -> str:
        for i in range(3):
            gate.wait(5)
            job.progress((i + 1) / 3, f"part {i + 1}")
            time.sleep(0.3)
        return "ok"

    job_id = client.app.state.jobs.submit(slow)
    gate.set()
    events = []
    with client.stream("GET", f"/api/jobs/{job_id}", headers={"Accept": "text/event-stream"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["state"] == "succeeded" and events[-1]["result"] == "ok"
    assert len(events) >= 3 and len({json.dumps(e) for e in events}) == len(events)  # one event per change


def test_unknown_jobs_are_404(client: TestClient) -> None:
    error_of(client.get("/api/jobs/" + "x" * 32), 404, "unknown_job")
    error_of(client.delete("/api/jobs/" + "x" * 32), 404, "unknown_job")
    error_of(client.get("/api/jobs/..%2Fsessions"), 404)


def test_another_process_sees_the_job_and_can_cancel_it(data_dir: Path) -> None:
    with make_client(data_dir) as a, make_client(data_dir) as b:
        started = threading.Event()

        def waits(job: JobContext) -> None:
            started.set()
            job.cancel.wait(10)
            job.check_cancelled()

        job_id = a.app.state.jobs.submit(waits)
        assert started.wait(5)
        assert b.get(f"/api/jobs/{job_id}").json()["state"] == "running"
        b.delete(f"/api/jobs/{job_id}")  # b does not run it: the request reaches a through the job's folder
        assert wait_for(b, job_id, ("cancelled",))["state"] == "cancelled"


def test_a_job_whose_process_died_is_reported_interrupted(client: TestClient, data_dir: Path) -> None:
    jobs_dir = data_dir / "jobs"
    job_id = "j" * 32
    (jobs_dir / "index" / job_id).write_text("")
    (jobs_dir / f"{job_id}.json").write_text(
        json.dumps(
            {
                "id": job_id,
                "kind": "quant",
                "session": None,
                "state": "running",
                "progress": 0.4,
                "message": "",
                "result": None,
                "error": None,
                "created": 1.0,
                "started": 1.0,
                "finished": None,
                "owner": {"pid": 999_999_999, "started": 1.0},
            }
        )
    )
    state = client.get(f"/api/jobs/{job_id}").json()
    assert state["state"] == "interrupted" and state["error"]["code"] == "interrupted"
