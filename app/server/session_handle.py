"""A session held open: its document up to date, and how the local store makes each accepted edit
durable (the log line fsynced before the answer), snapshots it, and saves it for download.

`SessionHandle` is the interface routes and services use; `LocalHandle` is the local store's
(app/server/session_store.py), on the folder layout described there.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from abc import ABC, abstractmethod
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onnx import TensorProto

from ..graph import EditError, ModelDocument, WorkbenchError, save_model
from ..graph.history import ItemChange, Transaction
from ..graph.io import external_info
from ..graph.summary import model_summary
from .downloads import EDITED
from .errors import Conflict
from .ids import new_id

if TYPE_CHECKING:
    from .session_store import LocalSessionStore

SNAPSHOT_READY = "ready"


class SessionHandle(ABC):
    """One session, locked for the duration of a request, with its document up to date."""

    doc: ModelDocument
    session_id: str

    def check_version(self, expected: int | None) -> None:
        """Optimistic concurrency: a client that saw another version must fetch again first."""
        if expected is not None and expected != self.doc.version:
            raise Conflict(
                "version_conflict",
                f"the session is at version {self.doc.version}, not {expected}: fetch it again and retry",
                {"version": self.doc.version},
            )

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


@dataclass
class OpenDocument:
    """A document held in this process's memory, and how far into the log it is."""

    doc: ModelDocument
    seq: int  # log lines applied
    offset: int  # bytes of log.jsonl consumed
    snapshot_seq: int  # log line the document was restored from (0 = the original upload)
    memory: int  # bytes of the model file it was parsed from: what it holds in memory, roughly
    since_snapshot_ms: float = 0.0
    summary: tuple[int, dict[str, Any]] | None = None  # (version, model summary)
    meta: dict[str, Any] | None = None  # meta.json, written once when the session is created


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class LocalHandle(SessionHandle):
    """A session of the local store, held under its lock: edits are applied in memory, then appended to the
    log and fsynced before the answer; a snapshot now and then keeps restores short."""

    def __init__(self, store: LocalSessionStore, session_id: str, folder: Path, state: OpenDocument):
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
        return {
            "id": self.session_id,
            "filename": meta["filename"],
            "created": meta["created"],
            "version": self.doc.version,
            "can_undo": bool(self.doc.history.done),
            "can_redo": bool(self.doc.history.undone),
            "summary": summary,
        }

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
        if (
            state.seq - state.snapshot_seq >= settings.snapshot_every
            or state.since_snapshot_ms >= settings.snapshot_after_seconds * 1000
        ):
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
                pickle.dump(
                    {
                        "seq": state.seq,
                        "offset": state.offset,
                        "version": doc.version,
                        "history": doc.history,
                        "model": model_name,
                    },
                    f,
                    protocol=pickle.HIGHEST_PROTOCOL,
                )
                f.flush()
                os.fsync(f.fileno())
            (tmp / SNAPSHOT_READY).touch()
            final = snapshots / f"{state.seq:012d}"
            os.replace(tmp, final)
            fsync_dir(snapshots)
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
        write_json(listing, [p.name for p in written])
        return written


def _external_locations(doc: ModelDocument) -> set[str]:
    """Data files read by the model's initializers or by tensors kept in its undo history."""
    found = {
        external_info(t).get("location", "")
        for t in doc.model.graph.initializer
        if t.data_location == TensorProto.EXTERNAL
    }
    for tx in doc.history.done + doc.history.undone:
        for change in tx.changes:
            if isinstance(change, ItemChange):
                for item in (change.old, change.new):
                    if isinstance(item, TensorProto) and item.data_location == TensorProto.EXTERNAL:
                        found.add(external_info(item).get("location", ""))
    found.discard("")
    return found
