"""Jobs on Celery workers, with Redis as broker and result backend (`serve --job-broker redis://...`).

The API sends a job as a Celery task (job id, session, kind, JSON parameters; job_kinds.py) and keeps
its state in the same JSON file as the local runner, in the shared data folder: any API replica
answers GET and the event stream from it, and DELETE writes the same cancel marker, which the job
checks at its next batch (a job still in the queue is marked cancelled at once and revoked).

Dead or slow: Celery acknowledges a task once it has run (`task_acks_late`) and a worker takes one task
per process at a time (`worker_prefetch_multiplier=1`). When a pool process dies, its worker hands the
task back at once (`task_reject_on_worker_lost`). When the whole worker dies (kill -9 of its process
group, a crashed machine), its task stays unacknowledged in Redis: kombu's Redis transport puts it back
in the queue once it has been unacknowledged for `visibility_timeout` seconds, checked by every live
worker every `unacked_restore_interval` seconds (with `unacked_restore_throttle=1`; kombu's defaults,
one hour and about 100 s, would leave a dead job for an hour) and when a worker starts. Redis cannot
tell a dead worker's task from a long healthy one, so it hands back long jobs too; the job state tells
them apart: the worker running a job writes a heartbeat into its state file every
`job_heartbeat_seconds`, and a delivery of a job whose heartbeat is fresh is a duplicate, which checks
again after a while (a Celery retry with a countdown) instead of running it. A job whose heartbeat is
older than STALE heartbeats lost its worker: the next delivery runs it again (attempt 2), and after
MAX_ATTEMPTS the delivery, or any API replica reading the state, marks it failed. So a dead worker's
job runs again within about a minute by default (visibility + restore interval, 60 + 10 s, for a job
younger than that; two heartbeat timeouts, 2 x 20 s, once its delivery has become such a check; the
tests use 3 s and 2 s), a healthy one runs once however long it takes, and nothing stays "running"
forever. While a job stands in the queue it uses no visibility time: a worker takes a task only when
a pool process is free.

Every change of a state file is made under its lock file (`<id>.lock`, flock, as the session store
does), and a worker writes only while the state still names its delivery (else it stops the job). The
heartbeats compare wall clocks: the machines' clocks must agree to within a few seconds (NTP).
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import Celery, Task
from kombu.exceptions import OperationalError

from .jobs import (
    JOB_ID,
    TERMINAL,
    CancelEvent,
    FileJobs,
    KindFunction,
    execute,
    jobs_folder,
    read_state,
    write_state,
)
from .settings import Settings

TASK = "onnx_workbench.run_job"
QUEUE = "onnx-workbench"
MAX_ATTEMPTS = 2
STALE = 4  # heartbeats missed: the worker running the job is gone
STOPPED_TWICE = "the worker running this job stopped twice (killed or its machine went down); it is not run again"


def celery_app(broker: str, settings: Settings, results: bool) -> Celery:
    """The Celery application of the API (which sends tasks) and of the workers (which run them). Workers
    store each task's outcome in the Redis result backend (for Flower and `celery inspect`); the API reads
    jobs from their state files, so it does not subscribe to results (which Redis would otherwise keep
    sending it)."""
    app = Celery("onnx_workbench", broker=broker, backend=broker if results else None, set_as_current=False)
    visibility = settings.job_visibility_seconds
    app.conf.update(
        task_acks_late=True,  # a task is acknowledged once it ran: a dead worker's task is delivered again
        task_reject_on_worker_lost=True,  # ...at once when only the pool process died
        worker_prefetch_multiplier=1,  # long tasks: a worker reserves no more than it runs
        worker_concurrency=settings.job_concurrency,
        task_default_queue=QUEUE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility,
            "unacked_restore_interval": max(1.0, min(10.0, visibility / 3)),
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
    )
    return app


def stale_after(settings: Settings) -> float:
    return STALE * settings.job_heartbeat_seconds


def _fresh(state: dict[str, Any], stale: float) -> bool:
    return time.time() - float(state.get("heartbeat") or 0.0) < stale


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """The job's lock file, held while its state is read and written again (by any process)."""
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def _stopped_twice(state: dict[str, Any]) -> dict[str, Any]:
    state.update(
        state="failed",
        finished=time.time(),
        error={"code": "worker_lost", "message": STOPPED_TWICE, "details": {"attempts": state.get("attempts", 0)}},
    )
    return state


class CeleryJobRunner(FileJobs):
    """Jobs sent to Celery workers; their state in the shared data folder."""

    def __init__(
        self,
        root: Path,
        session_dir: Callable[[str], Path],
        kinds: Mapping[str, KindFunction],
        broker: str,
        settings: Settings,
    ):
        super().__init__(root, session_dir, kinds)
        self.celery = celery_app(broker, settings, results=False)
        self.stale = stale_after(settings)

    def start(self, kind: str, params: dict[str, Any], *, session_id: str | None = None) -> str:
        if kind not in self.kinds:
            raise ValueError(f"unknown job kind {kind!r}")
        state, path = self._create(kind, session_id, attempts=0)
        try:
            self.celery.send_task(TASK, args=[state["id"], session_id, kind, params], task_id=state["id"])
        except OperationalError as err:  # Redis down or unreachable: the job is failed, the request answered
            message = f"the job queue (Redis) cannot be reached: {type(err).__name__}: {err}"
            state.update(state="failed", finished=time.time(), error={"code": "queue_unreachable", "message": message})
            write_state(path, state)
        return state["id"]

    def _observe(self, state: dict[str, Any], path: Path) -> dict[str, Any]:
        if state["state"] != "running" or _fresh(state, self.stale):
            return state
        if state.get("attempts", 0) < MAX_ATTEMPTS:  # Redis hands it to another worker soon
            attempt = state.get("attempts", 0) + 1
            message = f"its worker stopped; waiting for another worker (attempt {attempt} of {MAX_ATTEMPTS})"
            return {**state, "state": "queued", "message": message}
        with locked(path):
            state = read_state(path, state["id"])
            if state["state"] == "running" and not _fresh(state, self.stale):
                write_state(path, _stopped_twice(state))
        return state

    def _cancelled(self, job_id: str, path: Path, state: dict[str, Any]) -> dict[str, Any]:
        if state["state"] != "queued":
            return state  # a running job stops at its next check of the marker
        with locked(path):
            current = read_state(path, job_id)
            if current["state"] == "queued" or (current["state"] == "running" and not _fresh(current, self.stale)):
                current.update(state="cancelled", finished=time.time())
                write_state(path, current)
        try:
            self.celery.control.revoke(job_id)  # a worker that has it reserved drops it
        except OperationalError:
            pass  # no matter: a worker that gets it reads "cancelled" in its state and skips it
        return self.get(job_id)

    def shutdown(self) -> None:
        self.celery.close()


class WorkerJobs:
    """What a worker process does with a delivery of a job: run it, skip it, or look again later."""

    def __init__(
        self, session_dir: Callable[[str], Path], root: Path, kinds: Mapping[str, KindFunction], settings: Settings
    ):
        self.session_dir = session_dir
        self.root = root
        self.kinds = kinds
        self.heartbeat = settings.job_heartbeat_seconds
        self.stale = stale_after(settings)
        self.recheck = min(self.stale, settings.job_visibility_seconds / 2)

    def run(self, task: Task, job_id: str, session_id: str | None, kind: str, params: dict[str, Any]) -> str:
        if not JOB_ID.match(job_id):
            return "gone"
        path = jobs_folder(self.root, self.session_dir, session_id) / f"{job_id}.json"
        if not path.exists():
            return "gone"  # its session was deleted
        delivery = uuid.uuid4().hex
        with locked(path):
            state = read_state(path, job_id)
            verdict = self._claim(state, delivery, f"{task.request.hostname} pid {os.getpid()}", path)
            if verdict in ("run", "ended"):
                write_state(path, state)
        if verdict == "busy":  # another worker runs it: look again once its heartbeat could have gone stale
            raise task.retry(countdown=self.recheck, max_retries=None)
        if verdict != "run":
            return state["state"]
        self._execute(state, path, delivery, self.kinds[kind], params)
        return state["state"]

    def _claim(self, state: dict[str, Any], delivery: str, worker: str, path: Path) -> str:
        """What to do with a delivery, `state` updated to match: "run" (the state names this delivery),
        "busy" (another worker runs it), "done" (it ended before) or "ended" (it ends here)."""
        if state["state"] in TERMINAL:
            return "done"
        if state["state"] == "running" and _fresh(state, self.stale):
            return "busy"
        if path.with_suffix(".cancel").exists():
            state.update(state="cancelled", finished=time.time())
            return "ended"
        if state["state"] == "running" and state.get("attempts", 0) >= MAX_ATTEMPTS:
            _stopped_twice(state)
            return "ended"
        attempts = state.get("attempts", 0) + 1
        state.update(state="running", attempts=attempts, delivery=delivery, worker=worker, heartbeat=time.time())
        return "run"

    def _execute(
        self, state: dict[str, Any], path: Path, delivery: str, work: KindFunction, params: dict[str, Any]
    ) -> None:
        cancel = CancelEvent(path.with_suffix(".cancel"))
        done = threading.Event()

        def save(final: bool, beat_only: bool = False) -> None:
            if not path.parent.exists():
                return  # the session was deleted meanwhile
            with locked(path):
                current = read_state(path, state["id"])
                if current.get("delivery") != delivery or current["state"] in TERMINAL:
                    cancel.set()  # ended elsewhere (cancelled, or failed while this machine stood still)
                    return
                current = current if beat_only else state
                current["heartbeat"] = time.time()
                write_state(path, current, durable=final)

        def beat() -> None:
            while not done.wait(self.heartbeat):
                save(False, beat_only=True)

        beating = threading.Thread(target=beat, name=f"heartbeat-{state['id'][:8]}", daemon=True)
        beating.start()
        session_folder = self.session_dir(state["session"]) if state["session"] else None
        try:
            execute(lambda job: work(job, params), state, path.with_suffix(""), session_folder, cancel, save)
        finally:
            done.set()
            beating.join()


def run_worker(
    settings: Settings,
    kinds: Mapping[str, KindFunction],
    session_dir: Callable[[str], Path],
    loglevel: str,
) -> int:
    """A Celery worker (main process and `job_concurrency` pool processes) running the job kinds."""
    assert settings.job_broker
    app = celery_app(settings.job_broker, settings, results=True)
    jobs = WorkerJobs(session_dir, Path(settings.data_dir).resolve(), kinds, settings)

    @app.task(name=TASK, bind=True)
    def run_job(task: Task, job_id: str, session_id: str | None, kind: str, params: dict[str, Any]) -> str:
        return jobs.run(task, job_id, session_id, kind, params)

    worker = app.Worker(hostname=f"onnx-workbench-{os.getpid()}@{socket.gethostname()}", loglevel=loglevel.upper())
    worker.start()
    return int(worker.exitcode or 0)
