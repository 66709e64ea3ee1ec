"""Sessions: where each lives, how an accepted edit is made durable, and how a document is restored.

The interface (`SessionStore`, `SessionHandle`) is what routes use; `LocalSessionStore` keeps
everything under one data folder on local disk, one folder per session:

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
import secrets
import shutil
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onnx import TensorProto

from ..graph import EditError, ModelDocument, WorkbenchError, load_model, save_model
from ..graph.history import ItemChange, Transaction
from ..graph.io import external_info
from ..graph.summary import model_summary
from .downloads import EDITED
from .errors import Conflict, NotFound, ServiceError, unreadable_model
from .settings import Settings

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
SNAPSHOT_READY = "ready"
STAGING_MAX_AGE = 24 * 3600


def new_id() -> str:
    """192 random bits, URL-safe: not guessable, not enumerable."""
    return secrets.token_urlsafe(24)


class SessionHandle(ABC):
    """One session, locked for the duration of a request, with its document up to date."""

    doc: ModelDocument
    session_id: str

    def check_version(self, expected: int | None) -> None:
        """Optimistic concurrency: a client that saw another version must fetch again first."""
        if expected is not None and expected != self.doc.version:
            raise Conflict("version_conflict", f"the session is at version {self.doc.version}, not "
                           f"{expected}: fetch it again and retry", {"version": self.doc.version})

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """id, filename, created, version, can_undo, can_redo, summary."""

    @abstractmethod
    def apply(self, edits: list[dict[str, Any]], expected_version: int | None = None) -> list[Transaction]:
        """Apply edits all-or-nothing and make them durable before returning."""

    @abstractmethod
    def undo(self) -> Transaction: ...

    @abstractmethod
    def redo(self) -> Transaction: ...

    @abstractmethod
    def export(self) -> list[Path]:
        """The current model saved to files (model first, then its data file if any), cached per version."""

    def export_to(self, folder: Path) -> Path:
        """The current model hard-linked (or copied) into `folder`, which the caller owns: it stays
        readable after the lock is released and later edits replace the session's own export.
        Returns the model file; its data file, if any, lies beside it."""
        paths = self.export()
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            try:
                os.link(path, folder / path.name)
            except OSError:
                shutil.copyfile(path, folder / path.name)
        return folder / paths[0].name

    @abstractmethod
    def original_model(self) -> Path:
        """The model file as uploaded."""

    @abstractmethod
    def work_dir(self, kind: str) -> Path:
        """A folder inside the session for files that belong to it (job results, run outputs)."""


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
    def sweep(self) -> list[str]:
        """Remove idle sessions past their time to live; returns their ids."""

    @abstractmethod
    def session_dir(self, session_id: str) -> Path: ...


@dataclass
class _SessionLock:
    """A session's thread lock and how many threads hold or wait for it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


@dataclass
class _Open:
    """A document held in this process's memory, and how far into the log it is."""

    doc: ModelDocument
    seq: int  # log lines applied
    offset: int  # bytes of log.jsonl consumed
    snapshot_seq: int  # log line the document was restored from (0 = the original upload)
    memory: int  # bytes of the model file it was parsed from: what it holds in memory, roughly
    since_snapshot_ms: float = 0.0
    summary: tuple[int, dict[str, Any]] | None = None  # (version, model summary)
    meta: dict[str, Any] | None = None  # meta.json, written once when the session is created


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
        self._cache: OrderedDict[str, _Open] = OrderedDict()
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
        meta = {"id": session_id, "created": time.time(), "filename": filename,
                "model": model_path.relative_to(original).as_posix(), "upload_bytes": _folder_size(original)}
        _write_json(staging / "meta.json", meta)
        (staging / "log.jsonl").touch()
        (staging / "lock").touch()
        (staging / "last_used").touch()
        (staging / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
        folder = self.sessions / session_id
        os.replace(staging, folder)
        _fsync_dir(self.sessions)
        doc.base_dir = folder / "original" / Path(meta["model"]).parent
        self._remember(session_id, _Open(doc, 0, 0, 0, model_size, summary=(0, summary), meta=meta))
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
    def open(self, session_id: str) -> Iterator["_LocalHandle"]:
        with self._locked(session_id) as folder:
            last_used = folder / "last_used"
            if time.time() - last_used.stat().st_mtime > self.settings.session_ttl_seconds:
                raise NotFound("session_expired", f"session '{session_id}' expired after "
                               f"{self.settings.session_ttl_seconds} s without use", {"session": session_id})
            os.utime(last_used)
            state = self._catch_up(session_id, folder)
            yield _LocalHandle(self, session_id, folder, state)

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

    def _remember(self, session_id: str, state: _Open) -> None:
        with self._guard:
            self._cache[session_id] = state
            self._cache.move_to_end(session_id)
            while len(self._cache) > 1 and (len(self._cache) > self.settings.cache_sessions or sum(
                    o.memory for o in self._cache.values()) > self.settings.cache_bytes):
                self._cache.popitem(last=False)  # least recently used; reloaded from disk when needed

    def _forget(self, session_id: str) -> None:
        with self._guard:
            self._cache.pop(session_id, None)

    def _catch_up(self, session_id: str, folder: Path) -> _Open:
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

    def _restore(self, folder: Path) -> _Open:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        for snap in sorted((folder / "snapshots").glob("[0-9]*"), reverse=True):
            if (snap / SNAPSHOT_READY).exists():
                with open(snap / "state.pickle", "rb") as f:
                    saved = pickle.load(f)
                doc = load_model(snap / saved["model"], guard=False)  # checked at upload, written by us
                doc.restore_history(saved["history"], saved["version"])
                return _Open(doc, saved["seq"], saved["offset"], saved["seq"], (snap / saved["model"]).stat().st_size,
                             meta=meta)
        model = folder / "original" / meta["model"]
        return _Open(load_model(model, guard=False), 0, 0, 0, model.stat().st_size, meta=meta)

    def _replay(self, state: _Open, entry: dict[str, Any]) -> None:
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


class _LocalHandle(SessionHandle):
    def __init__(self, store: LocalSessionStore, session_id: str, folder: Path, state: _Open):
        self.store = store
        self.session_id = session_id
        self.folder = folder
        self.state = state
        self.doc = state.doc

    def _meta(self) -> dict[str, Any]:
        """meta.json, read once per document held in memory rather than on every request."""
        if self.state.meta is None:
            self.state.meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
        return self.state.meta

    def info(self) -> dict[str, Any]:
        meta = self._meta()
        if self.state.summary is None or self.state.summary[0] != self.doc.version:
            self.state.summary = (self.doc.version, model_summary(self.doc))
        summary = self.state.summary[1]
        return {"id": self.session_id, "filename": meta["filename"], "created": meta["created"],
                "version": self.doc.version, "can_undo": bool(self.doc.history.done),
                "can_redo": bool(self.doc.history.undone), "summary": summary}

    # -- mutations: apply in memory, then append + fsync, then answer ----------------------------
    def apply(self, edits: list[dict[str, Any]], expected_version: int | None = None) -> list[Transaction]:
        self.check_version(expected_version)
        started = time.perf_counter()
        version = self.doc.version
        try:
            applied = self.doc.apply(edits)
        except BaseException as err:
            if not isinstance(err, WorkbenchError) or self.doc.version != version:
                self.store._forget(self.session_id)  # maybe not rolled back whole: reload it from disk
            raise
        if applied:
            self._commit({"op": "apply", "edits": edits}, started)
        return applied

    def undo(self) -> Transaction:
        started = time.perf_counter()
        tx = self.doc.undo()
        self._commit({"op": "undo"}, started)
        return tx

    def redo(self) -> Transaction:
        started = time.perf_counter()
        tx = self.doc.redo()
        self._commit({"op": "redo"}, started)
        return tx

    def _commit(self, entry: dict[str, Any], started: float) -> None:
        state = self.state
        entry["version"] = self.doc.version
        entry["ms"] = round((time.perf_counter() - started) * 1000, 3)
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        log_path = self.folder / "log.jsonl"
        try:
            with open(log_path, "ab") as log:
                log.write(line)
                log.flush()
                os.fsync(log.fileno())
        except BaseException:
            self.store._forget(self.session_id)  # memory is ahead of disk: reload next time
            with suppress(OSError):  # a line written in part (or whole, but not synced) was never acknowledged
                os.truncate(log_path, state.offset)
            raise
        state.offset += len(line)
        state.seq += 1
        state.since_snapshot_ms += entry["ms"]
        settings = self.store.settings
        if state.seq - state.snapshot_seq >= settings.snapshot_every \
                or state.since_snapshot_ms >= settings.snapshot_after_seconds * 1000:
            self._snapshot()

    def _snapshot(self) -> None:
        """Save the model and its history at this log position, so a restore replays only what follows.

        External data files the model or its undo history point to are hard-linked into the snapshot
        folder, so the document can switch to it without reading its weights again.
        """
        state, doc = self.state, self.doc
        assert doc.base_dir is not None
        snapshots = self.folder / "snapshots"
        tmp = snapshots / f"tmp-{new_id()[:8]}"
        try:  # the edit is already in the log: a snapshot that does not fit (a full disk) is only skipped
            tmp.mkdir(parents=True)
            for location in _external_locations(doc):
                target = tmp / location
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(doc.base_dir / location, target)
                except OSError:
                    shutil.copyfile(doc.base_dir / location, target)
            model_name = f"snap-{state.seq}.onnx"
            save_model(doc, tmp / model_name, reuse_external=True)
            with open(tmp / "state.pickle", "wb") as f:
                pickle.dump({"seq": state.seq, "offset": state.offset, "version": doc.version,
                             "history": doc.history, "model": model_name}, f, protocol=pickle.HIGHEST_PROTOCOL)
                f.flush()
                os.fsync(f.fileno())
            (tmp / SNAPSHOT_READY).touch()
            final = snapshots / f"{state.seq:012d}"
            os.replace(tmp, final)
            _fsync_dir(snapshots)
        except (OSError, EditError):
            shutil.rmtree(tmp, ignore_errors=True)
            return  # the log still holds everything; the next edit tries again
        doc.base_dir = final
        state.snapshot_seq, state.since_snapshot_ms = state.seq, 0.0
        for old in snapshots.iterdir():
            if old != final:
                shutil.rmtree(old, ignore_errors=True)

    # -- files ---------------------------------------------------------------------------------
    def original_model(self) -> Path:
        return self.folder / "original" / self._meta()["model"]

    def export(self) -> list[Path]:
        exports = self.folder / "exports"
        current = exports / f"v{self.doc.version}-{self.state.seq}"
        listing = current / "files.json"
        if listing.exists():
            return [current / name for name in json.loads(listing.read_text(encoding="utf-8"))]
        stem = Path(self._meta()["model"]).stem
        if exports.exists():
            for old in exports.iterdir():
                shutil.rmtree(old, ignore_errors=True)  # open downloads keep reading their files
        current.mkdir(parents=True)
        written = save_model(self.doc, current / f"{stem}{EDITED}.onnx")
        _write_json(listing, [p.name for p in written])
        return written

    def work_dir(self, kind: str) -> Path:
        path = self.folder / kind
        path.mkdir(exist_ok=True)
        return path


def _external_locations(doc: ModelDocument) -> set[str]:
    """Data files read by the model's initializers or by tensors kept in its undo history."""
    found = {external_info(t).get("location", "") for t in doc.model.graph.initializer
             if t.data_location == TensorProto.EXTERNAL}
    for tx in doc.history.done + doc.history.undone:
        for change in tx.changes:
            if isinstance(change, ItemChange):
                for item in (change.old, change.new):
                    if isinstance(item, TensorProto) and item.data_location == TensorProto.EXTERNAL:
                        found.add(external_info(item).get("location", ""))
    found.discard("")
    return found


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _not_found(session_id: str) -> NotFound:
    return NotFound("unknown_session", "no such session (it may have been deleted or expired)",
                    {"session": session_id[:80]})
