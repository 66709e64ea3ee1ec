"""Sessions: where each lives, how an accepted edit is made durable, and how a document is restored.

The interface (`SessionStore`, and `SessionHandle` in app/server/session_handle.py) is what routes use;
`LocalSessionStore` keeps everything under one data folder on local disk, one folder per session:

    sessions/<id>/original/     the upload as received (model and external data files)
    sessions/<id>/log.jsonl     one line per accepted apply/undo/redo, fsynced before the 2xx answer
    sessions/<id>/snapshots/N/  the model after log line N, plus its undo history (pickled)
    sessions/<id>/exports/      the current model saved for download or a run (cached per version)
    sessions/<id>/jobs/         results of background jobs on this session

The log on disk is the truth. Every request takes the session's file lock (fcntl.flock) and first
replays the log lines its in-memory document has not seen, so several worker processes share a
session without diverging, and a restarted server finds every edit it acknowledged.
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import re
import shutil
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..graph import WorkbenchError, load_model
from ..graph.summary import model_summary
from .errors import NotFound, ServiceError, unreadable_model
from .ids import new_id
from .session_handle import SNAPSHOT_READY, LocalHandle, OpenDocument, fsync_dir, write_json
from .settings import Settings

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
STAGING_MAX_AGE = 24 * 3600


class SessionStore(ABC):
    """Creates, finds, locks and removes sessions. A shared store can replace the local one."""

    @abstractmethod
    def staging_dir(self) -> Path:
        """A fresh folder on the store's disk to stream an upload into."""

    @abstractmethod
    def create(self, staging: Path, model_path: Path, filename: str) -> tuple[str, dict[str, Any]]:
        """Make a session of an upload staged by `staging_dir`; returns its id and summary."""

    @abstractmethod
    def info(self, session_id: str) -> dict[str, Any]: ...

    @abstractmethod
    def delete(self, session_id: str) -> None: ...

    @abstractmethod
    def open(self, session_id: str) -> Any:
        """Context manager yielding a locked, up-to-date SessionHandle."""

    @abstractmethod
    def touch(self, session_id: str) -> None:
        """Mark a session used, as ``open`` does, without loading its model (404 when gone or expired)."""

    @abstractmethod
    def sweep(self) -> list[str]:
        """Remove idle sessions past their time to live; returns their ids."""

    @abstractmethod
    def session_dir(self, session_id: str) -> Path: ...


@dataclass
class _SessionLock:
    """A session's thread lock and how many threads hold or wait for it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


class LocalSessionStore(SessionStore):
    """Sessions as folders under `<data>/sessions`, documents cached per process (LRU)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = Path(settings.data_dir).resolve()
        self.sessions = self.root / "sessions"
        self.staging = self.root / "staging"
        self.trash = self.root / "trash"
        for folder in (self.sessions, self.staging, self.trash):
            folder.mkdir(parents=True, exist_ok=True)
        self._cache: OrderedDict[str, OpenDocument] = OrderedDict()
        self._locks: dict[str, _SessionLock] = {}  # only sessions a thread holds or waits for
        self._guard = threading.Lock()

    # -- layout --------------------------------------------------------------------------------
    def session_dir(self, session_id: str) -> Path:
        if not SESSION_ID.match(session_id):
            raise _not_found(session_id)
        return self.sessions / session_id

    def staging_dir(self) -> Path:
        path = self.staging / f"{new_id()}"
        path.mkdir(parents=True)
        return path

    # -- create / info / delete ----------------------------------------------------------------
    def create(self, staging: Path, model_path: Path, filename: str) -> tuple[str, dict[str, Any]]:
        """Load the staged upload (refusing what is not a model), then move it in place as a session."""
        original = staging / "original"
        try:
            doc = load_model(model_path)
            summary = model_summary(doc)
        except WorkbenchError:
            raise
        except Exception as err:  # parsed as protobuf, yet not a model the engine can index
            raise unreadable_model("read", err) from None
        session_id = new_id()
        model_size = model_path.stat().st_size
        model_rel = model_path.relative_to(original)
        meta = {
            "id": session_id,
            "created": time.time(),
            "filename": filename,
            "model": model_rel.as_posix(),
            "upload_bytes": _folder_size(original),
        }
        write_json(staging / "meta.json", meta)
        (staging / "log.jsonl").touch()
        (staging / "lock").touch()
        (staging / "last_used").touch()
        (staging / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
        folder = self.sessions / session_id
        os.replace(staging, folder)
        fsync_dir(self.sessions)
        doc.base_dir = folder / "original" / model_rel.parent
        self._remember(session_id, OpenDocument(doc, 0, 0, 0, model_size, summary=(0, summary), meta=meta))
        return session_id, summary

    def info(self, session_id: str) -> dict[str, Any]:
        with self.open(session_id) as handle:
            return handle.info()

    def delete(self, session_id: str) -> None:
        with self._locked(session_id) as folder:
            gone = self.trash / f"{session_id}-{new_id()[:8]}"
            os.replace(folder, gone)
        self._forget(session_id)
        shutil.rmtree(gone, ignore_errors=True)

    def sweep(self) -> list[str]:
        """Delete sessions idle past the time to live, and leftovers of interrupted uploads."""
        now = time.time()
        removed = []
        for folder in list(self.sessions.iterdir()):
            try:
                idle = now - (folder / "last_used").stat().st_mtime
            except FileNotFoundError:
                continue
            if idle > self.settings.session_ttl_seconds:
                try:
                    self.delete(folder.name)
                    removed.append(folder.name)
                except ServiceError:
                    pass
        for folder in list(self.staging.iterdir()) + list(self.trash.iterdir()):
            try:
                if now - folder.stat().st_mtime > STAGING_MAX_AGE or folder.parent == self.trash:
                    shutil.rmtree(folder, ignore_errors=True)
            except FileNotFoundError:
                pass
        return removed

    # -- opening -------------------------------------------------------------------------------
    @contextmanager
    def open(self, session_id: str) -> Iterator[LocalHandle]:
        with self._locked(session_id) as folder:
            self._use(session_id, folder)
            state = self._catch_up(session_id, folder)
            yield LocalHandle(self, session_id, folder, state)

    def touch(self, session_id: str) -> None:
        with self._locked(session_id) as folder:
            self._use(session_id, folder)

    def _use(self, session_id: str, folder: Path) -> None:
        """404 for a session past its time to live, else its last use is now."""
        last_used = folder / "last_used"
        if time.time() - last_used.stat().st_mtime > self.settings.session_ttl_seconds:
            raise NotFound(
                "session_expired",
                f"session '{session_id}' expired after {self.settings.session_ttl_seconds} s without use",
                {"session": session_id},
            )
        os.utime(last_used)

    @contextmanager
    def _locked(self, session_id: str) -> Iterator[Path]:
        """The session's folder, held exclusively by this thread and process (404 when it is gone)."""
        folder = self.session_dir(session_id)
        with self._thread_lock(session_id):
            try:
                lock_file = open(folder / "lock", "rb")
            except FileNotFoundError:
                raise _not_found(session_id) from None
            with lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes
                if not folder.exists():
                    self._forget(session_id)
                    raise _not_found(session_id)
                yield folder

    @contextmanager
    def _thread_lock(self, session_id: str) -> Iterator[None]:
        """The session's lock among this process's threads. Its entry lives while a thread holds or waits
        for it, so ids that were only asked for once (unknown, deleted) leave nothing behind."""
        with self._guard:
            entry = self._locks.get(session_id)
            if entry is None:
                entry = self._locks[session_id] = _SessionLock()
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._guard:
                entry.users -= 1
                if not entry.users:
                    del self._locks[session_id]

    def _remember(self, session_id: str, state: OpenDocument) -> None:
        with self._guard:
            self._cache[session_id] = state
            self._cache.move_to_end(session_id)
            while len(self._cache) > 1 and (
                len(self._cache) > self.settings.cache_sessions
                or sum(o.memory for o in self._cache.values()) > self.settings.cache_bytes
            ):
                self._cache.popitem(last=False)  # least recently used; reloaded from disk when needed

    def _forget(self, session_id: str) -> None:
        with self._guard:
            self._cache.pop(session_id, None)

    def _catch_up(self, session_id: str, folder: Path) -> OpenDocument:
        """The cached document, brought up to the end of the log (restored from disk if not cached)."""
        with self._guard:
            state = self._cache.get(session_id)
            if state is not None:
                self._cache.move_to_end(session_id)
        if state is not None and (state.doc.base_dir is None or not state.doc.base_dir.exists()):
            state = None  # its snapshot was replaced by another process
        if state is None:
            state = self._restore(folder)
            self._remember(session_id, state)
        log_path = folder / "log.jsonl"
        size = log_path.stat().st_size
        if size > state.offset:
            with open(log_path, "rb") as log:
                log.seek(state.offset)
                data = log.read(size - state.offset)
            end = data.rfind(b"\n") + 1
            for line in data[:end].splitlines():
                self._replay(state, json.loads(line))
            state.offset += end
            if end < len(data):  # a writer died mid-line: that edit was never acknowledged
                os.truncate(log_path, state.offset)
        return state

    def _restore(self, folder: Path) -> OpenDocument:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        for snap in sorted((folder / "snapshots").glob("[0-9]*"), reverse=True):
            if (snap / SNAPSHOT_READY).exists():
                with open(snap / "state.pickle", "rb") as f:
                    saved = pickle.load(f)
                doc = load_model(snap / saved["model"], guard=False)  # checked at upload, written by us
                doc.restore_history(saved["history"], saved["version"])
                return OpenDocument(
                    doc, saved["seq"], saved["offset"], saved["seq"], (snap / saved["model"]).stat().st_size, meta=meta
                )
        model = folder / "original" / meta["model"]
        return OpenDocument(load_model(model, guard=False), 0, 0, 0, model.stat().st_size, meta=meta)

    def _replay(self, state: OpenDocument, entry: dict[str, Any]) -> None:
        doc = state.doc
        op = entry["op"]
        if op == "apply":
            doc.apply(entry["edits"])
        elif op == "undo":
            doc.undo()
        elif op == "redo":
            doc.redo()
        state.seq += 1
        state.since_snapshot_ms += float(entry.get("ms", 0.0))


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _not_found(session_id: str) -> NotFound:
    return NotFound(
        "unknown_session", "no such session (it may have been deleted or expired)", {"session": session_id[:80]}
    )
