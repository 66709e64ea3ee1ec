"""Background jobs (quantization analysis and the like): submit, follow progress, cancel, keep results.

`JobRunner` is the interface routes and features use; `LocalJobRunner` runs jobs on threads of the
process that accepted them and keeps each job's state in a JSON file, so that every worker process
can answer for it and a job whose process died is reported as "interrupted" rather than running
forever. A job on a session keeps its state and result in the session's folder (`jobs/<id>.json`)
and goes away with the session.

A job function gets a `JobContext` and returns a JSON-serialisable result:

    def work(job: JobContext) -> dict:
        for i, batch in enumerate(batches):
            job.check_cancelled()            # raises JobCancelled once cancel() was called
            ...
            job.progress((i + 1) / len(batches), f"batch {i + 1}")
        return {"report": ...}               # stored with the job; files go in job.folder

    job_id = runner.submit(work, session_id=sid, kind="quant")   # runner: a route's `Jobs` dependency

A job on a session takes the model as it is at that moment with
`with store.open(sid) as handle: model = handle.export_to(job.folder)` and then works
without holding the session's lock, so editing goes on meanwhile.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
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

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled()


JobFunction = Callable[[JobContext], Any]


class JobRunner(ABC):
    """Submit work, read its state, cancel it. A real job queue can replace the local runner."""

    @abstractmethod
    def submit(self, fn: JobFunction, *, session_id: str | None = None, kind: str = "job") -> str:
        """Queue `fn`; returns the job id at once."""

    @abstractmethod
    def get(self, job_id: str) -> dict[str, Any]:
        """{"id", "kind", "session", "state", "progress", "message", "result", "error", timestamps};
        raises NotFound for an unknown id."""

    @abstractmethod
    def cancel(self, job_id: str) -> dict[str, Any]:
        """Ask the job to stop (it ends "cancelled" at its next check); returns its state."""

    @abstractmethod
    def shutdown(self) -> None: ...


class LocalJobRunner(JobRunner):
    """Threads in this process; state as JSON files readable by every process."""

    def __init__(self, root: Path, session_dir: Callable[[str], Path], workers: int = 1):
        self.folder = Path(root) / "jobs"  # jobs without a session
        self.index = self.folder / "index"  # job id -> session id ("" for none)
        self.index.mkdir(parents=True, exist_ok=True)
        self.session_dir = session_dir
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self.me = {"pid": os.getpid(), "started": psutil.Process().create_time()}
        self._events: dict[str, CancelEvent] = {}

    # -- where things are ----------------------------------------------------------------------
    def _state_path(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id):
            raise _unknown(job_id)
        pointer = self.index / job_id
        try:
            session_id = pointer.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _unknown(job_id) from None
        folder = self.session_dir(session_id) / "jobs" if session_id else self.folder
        return folder / f"{job_id}.json"

    def submit(self, fn: JobFunction, *, session_id: str | None = None, kind: str = "job") -> str:
        job_id = new_id()
        folder = (self.session_dir(session_id) / "jobs") if session_id else self.folder
        folder.mkdir(parents=True, exist_ok=True)
        state_path = folder / f"{job_id}.json"
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
            "owner": self.me,
        }
        _write(state_path, state)
        (self.index / job_id).write_text(session_id or "", encoding="utf-8")
        cancel = CancelEvent(state_path.with_suffix(".cancel"))
        self._events[job_id] = cancel
        job_folder = folder / job_id
        self.pool.submit(self._run, fn, state, state_path, job_folder, cancel)
        return job_id

    def _run(self, fn: JobFunction, state: dict[str, Any], path: Path, folder: Path, cancel: CancelEvent) -> None:
        last = [0.0]

        def progress(fraction: float, message: str = "", **detail: Any) -> None:
            state["progress"] = max(0.0, min(1.0, float(fraction)))
            state["message"] = str(message)
            if detail:
                state["detail"] = detail
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL:
                last[0] = now
                _write(path, state, durable=False)

        try:
            if cancel.is_set():
                raise JobCancelled()
            state.update(state="running", started=time.time())
            _write(path, state, durable=False)
            folder.mkdir(parents=True, exist_ok=True)
            result = fn(JobContext(state["id"], state["session"], folder, cancel, progress))
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
        self._events.pop(state["id"], None)
        if path.parent.exists():  # the session may have been deleted meanwhile
            _write(path, state)

    def get(self, job_id: str) -> dict[str, Any]:
        path = self._state_path(job_id)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            raise _unknown(job_id) from None
        if state["state"] not in TERMINAL and not _alive(state.get("owner") or {}):
            state.update(
                state="interrupted",
                finished=time.time(),
                error={"code": "interrupted", "message": "the server process running this job stopped", "details": {}},
            )
            _write(path, state)
        state["cancel_requested"] = path.with_suffix(".cancel").exists()
        state.pop("owner", None)
        return state

    def cancel(self, job_id: str) -> dict[str, Any]:
        path = self._state_path(job_id)
        if not path.exists():
            raise _unknown(job_id)
        state = self.get(job_id)
        if state["state"] not in TERMINAL:
            path.with_suffix(".cancel").touch()
            event = self._events.get(job_id)
            if event is not None:
                event.set()
            state["cancel_requested"] = True
        return state

    def shutdown(self) -> None:
        for event in list(self._events.values()):
            event.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _write(path: Path, state: dict[str, Any], durable: bool = True) -> None:
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
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
