"""Background jobs (quantization analysis and the like): submit, follow progress, cancel, keep results.

`JobRunner` is the interface routes and features use. Every runner keeps each job's state in a JSON
file, so that every process (API replica or worker) can answer for it: a job on a session keeps its
state and result in the session's folder (`jobs/<id>.json`) and goes away with the session. A
`<id>.cancel` marker file next to it asks the job to stop, from any process.

Features start jobs by kind and JSON parameters (`runner.start("quant", {...}, session_id=sid)`, the
kinds are in job_kinds.py), so that a job can run in another process or on another machine:
`LocalJobRunner` runs them on threads of the process that accepted them (a job whose process died is
reported "interrupted" rather than running forever); celery_jobs.CeleryJobRunner sends them to
Celery workers. A kind's function gets a `JobContext` and its parameters and returns a
JSON-serialisable result:

    def work(job: JobContext, params: dict) -> dict:
        for i, batch in enumerate(batches):
            job.check_cancelled()            # raises JobCancelled once cancel() was called
            ...
            job.progress((i + 1) / len(batches), f"batch {i + 1}")
        return {"report": ...}               # stored with the job; files go in job.folder

Everything such a function reads comes from disk (the session's folder, `job.session_folder`), never
from the memory of the process that accepted the request: the analysis' folder holds its own copy of
the model, taken under the session's lock when it was asked for, so editing goes on meanwhile.
`LocalJobRunner.submit(fn)` runs an in-process function (a closure), which only the local runner can.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ..graph import WorkbenchError
from .errors import NotFound, disk_full_error, error_body, is_disk_full
from .ids import new_id

TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
PROGRESS_INTERVAL = 0.2
#: Fields of the state file that only runners read (who runs the job, its heartbeat, its deliveries)
INTERNAL = ("owner", "worker", "heartbeat", "delivery", "attempts")


class JobCancelled(Exception):
    """Raised by JobContext.check_cancelled(); the job ends in state "cancelled"."""


class CancelEvent:
    """Like threading.Event, but also set when another process asked to cancel (a marker file)."""

    def __init__(self, marker: Path):
        self._event = threading.Event()
        self._marker = marker

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        if not self._event.is_set() and self._marker.exists():
            self._event.set()
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                return False
            self._event.wait(left)
        return True


@dataclass
class JobContext:
    """What a running job sees: its id, where to put files, how to report progress, whether to stop."""

    job_id: str
    session_id: str | None
    folder: Path
    cancel: CancelEvent
    progress: Callable[..., None]  # progress(fraction: float, message: str = "", **detail) (detail: JSON values)
    session_folder: Path | None = None  # where a session job finds what it works on

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled()


JobFunction = Callable[[JobContext], Any]
KindFunction = Callable[[JobContext, dict[str, Any]], Any]


class JobRunner(ABC):
    """Start work, read its state, cancel it: the seam between features and where jobs run."""

    @abstractmethod
    def start(self, kind: str, params: dict[str, Any], *, session_id: str | None = None) -> str:
        """Queue a job of a registered kind with JSON parameters; returns the job id at once."""

    @abstractmethod
    def get(self, job_id: str) -> dict[str, Any]:
        """{"id", "kind", "session", "state", "progress", "message", "result", "error", timestamps};
        raises NotFound for an unknown id."""

    @abstractmethod
    def cancel(self, job_id: str) -> dict[str, Any]:
        """Ask the job to stop (it ends "cancelled" at its next check); returns its state."""

    @abstractmethod
    def shutdown(self) -> None: ...


class FileJobs(JobRunner):
    """The state files every runner keeps: where they are, creating one, reading and cancelling."""

    def __init__(self, root: Path, session_dir: Callable[[str], Path], kinds: Mapping[str, KindFunction]):
        self.folder = Path(root) / "jobs"  # jobs without a session
        self.index = self.folder / "index"  # job id -> session id ("" for none)
        self.index.mkdir(parents=True, exist_ok=True)
        self.session_dir = session_dir
        self.kinds = kinds

    def _state_path(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id):
            raise _unknown(job_id)
        pointer = self.index / job_id
        try:
            session_id = pointer.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _unknown(job_id) from None
        return self._jobs_folder(session_id or None) / f"{job_id}.json"

    def _jobs_folder(self, session_id: str | None) -> Path:
        return jobs_folder(self.folder.parent, self.session_dir, session_id)

    def _create(self, kind: str, session_id: str | None, **extra: Any) -> tuple[dict[str, Any], Path]:
        """A new job's state file ("queued") and its index entry."""
        job_id = new_id()
        folder = self._jobs_folder(session_id)
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "id": job_id,
            "kind": kind,
            "session": session_id,
            "state": "queued",
            "progress": 0.0,
            "message": "",
            "result": None,
            "error": None,
            "created": time.time(),
            "started": None,
            "finished": None,
            **extra,
        }
        path = folder / f"{job_id}.json"
        write_state(path, state)
        (self.index / job_id).write_text(session_id or "", encoding="utf-8")
        return state, path

    def get(self, job_id: str) -> dict[str, Any]:
        path = self._state_path(job_id)
        state = self._observe(read_state(path, job_id), path)
        state["cancel_requested"] = path.with_suffix(".cancel").exists()
        for field in INTERNAL:
            state.pop(field, None)
        return state

    @abstractmethod
    def _observe(self, state: dict[str, Any], path: Path) -> dict[str, Any]:
        """The state as it is: an unfinished job whose runner is gone is not reported as running."""

    def cancel(self, job_id: str) -> dict[str, Any]:
        path = self._state_path(job_id)
        state = self.get(job_id)
        if state["state"] not in TERMINAL:
            path.with_suffix(".cancel").touch()
            state = self._cancelled(job_id, path, state)
            state["cancel_requested"] = True
        return state

    def _cancelled(self, job_id: str, path: Path, state: dict[str, Any]) -> dict[str, Any]:
        """After the marker was written: let the runner know at once (the job checks the marker anyway)."""
        return state


class LocalJobRunner(FileJobs):
    """Threads in this process; state as JSON files readable by every process."""

    def __init__(
        self, root: Path, session_dir: Callable[[str], Path], kinds: Mapping[str, KindFunction], workers: int = 1
    ):
        super().__init__(root, session_dir, kinds)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self.me = {"pid": os.getpid(), "started": psutil.Process().create_time()}
        self._events: dict[str, CancelEvent] = {}

    def start(self, kind: str, params: dict[str, Any], *, session_id: str | None = None) -> str:
        work = self.kinds[kind]
        return self.submit(lambda job: work(job, params), session_id=session_id, kind=kind)

    def submit(self, fn: JobFunction, *, session_id: str | None = None, kind: str = "job") -> str:
        """Queue an in-process function; returns the job id at once."""
        state, path = self._create(kind, session_id, owner=self.me)
        cancel = CancelEvent(path.with_suffix(".cancel"))
        self._events[state["id"]] = cancel
        session_folder = self.session_dir(session_id) if session_id else None
        self.pool.submit(self._run, fn, state, path, session_folder, cancel)
        return state["id"]

    def _run(
        self, fn: JobFunction, state: dict[str, Any], path: Path, session_folder: Path | None, cancel: CancelEvent
    ) -> None:
        def save(final: bool) -> None:
            if not final or path.parent.exists():  # the session may have been deleted meanwhile
                write_state(path, state, durable=final)

        execute(fn, state, path.with_suffix(""), session_folder, cancel, save)
        self._events.pop(state["id"], None)

    def _observe(self, state: dict[str, Any], path: Path) -> dict[str, Any]:
        if state["state"] not in TERMINAL and not _alive(state.get("owner") or {}):
            state.update(
                state="interrupted",
                finished=time.time(),
                error={"code": "interrupted", "message": "the server process running this job stopped", "details": {}},
            )
            write_state(path, state)
        return state

    def _cancelled(self, job_id: str, path: Path, state: dict[str, Any]) -> dict[str, Any]:
        event = self._events.get(job_id)
        if event is not None:
            event.set()
        return state

    def shutdown(self) -> None:
        for event in list(self._events.values()):
            event.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


def execute(
    fn: JobFunction,
    state: dict[str, Any],
    folder: Path,
    session_folder: Path | None,
    cancel: CancelEvent,
    save: Callable[[bool], None],
) -> None:
    """Run a job function and record what came of it in `state`; `save(final)` writes the state (final: the
    last time, durably). Every runner runs its jobs through this."""
    last = [0.0]

    def progress(fraction: float, message: str = "", **detail: Any) -> None:
        state["progress"] = max(0.0, min(1.0, float(fraction)))
        state["message"] = str(message)
        if detail:
            state["detail"] = detail
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL:
            last[0] = now
            save(False)

    try:
        if cancel.is_set():
            raise JobCancelled()
        state.update(state="running", started=time.time())
        save(False)
        folder.mkdir(parents=True, exist_ok=True)
        result = fn(JobContext(state["id"], state["session"], folder, cancel, progress, session_folder))
        json.dumps(result)  # a result that cannot be stored is the job's failure, not the runner's
        state.update(state="succeeded", progress=1.0, result=result)
    except JobCancelled:
        state.update(state="cancelled")
    except WorkbenchError as err:
        state.update(state="failed", error=error_body(err.code, err.message, err.details)["error"])
    except Exception as err:  # the job's own bug: recorded on the job, the server carries on
        if is_disk_full(err):
            full = disk_full_error(err)
            state.update(state="failed", error=error_body(full.code, full.message, full.details)["error"])
        else:
            state.update(
                state="failed",
                error=error_body(
                    "job_failed", f"{type(err).__name__}: {err}", {"trace": traceback.format_exc(limit=5)}
                )["error"],
            )
    state["finished"] = time.time()
    save(True)


def jobs_folder(root: Path, session_dir: Callable[[str], Path], session_id: str | None) -> Path:
    """Where the state files of a session's jobs are; jobs without a session have theirs in the data folder."""
    return (session_dir(session_id) / "jobs") if session_id else Path(root) / "jobs"


def read_state(path: Path, job_id: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        raise _unknown(job_id) from None


def write_state(path: Path, state: dict[str, Any], durable: bool = True) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def _alive(owner: dict[str, Any]) -> bool:
    """Is the process that owns a job still the one that started it (pids get reused)?"""
    try:
        return abs(psutil.Process(int(owner["pid"])).create_time() - float(owner["started"])) < 1.0
    except (KeyError, ValueError, TypeError, psutil.Error):
        return False


def _unknown(job_id: str) -> NotFound:
    return NotFound("unknown_job", "no such job (its session may have been deleted)", {"job": job_id[:80]})
