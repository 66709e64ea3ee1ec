"""The model being edited: the ModelProto, its scopes (scope.py), the undo history, atomic edits.

An edit either applies fully and leaves a model that passes onnx's checker, or raises an
EditError naming what is wrong and leaves the model exactly as it was (protobuf-equal).
Validation is incremental: the nodes and tensors an edit touched are checked with onnx's own
node checker and our structural rules (every read tensor is produced, SSA, topological order);
edits that rewrite the whole graph run the full checker on a weightless copy. The checks of what an
edit touched are in validation.py; the whole-model check is here because it undoes the edit to compare.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from onnx import ModelProto, NodeProto, OperatorSetIdProto

from .errors import EditError, NotFoundError, WorkbenchError
from .history import Change, GraphPath, History, ItemChange, ModelChange, Transaction, affects_shapes, copy_message
from .index import GraphIndex, subgraphs
from .scope import Scope, has_subgraph, item_name, subgraph
from .validation import Pending, check_nodes, check_order, check_tensors

NodeRef = str | list[str]
JOURNAL_STEPS = 64  # version steps a client can ask "what changed since" about


@dataclass(frozen=True)
class Step:
    """One version step: the transaction applied (or undone) to reach `version`, so that a client
    holding an older version can be told what changed instead of fetching the whole model again."""

    version: int
    tx: Transaction
    undone: bool
    shape_revision_before: int

    def changes(self) -> list[Change]:
        """The primitive changes in the order they were made by this step."""
        return [c.inverse() for c in reversed(self.tx.changes)] if self.undone else self.tx.changes


class ModelDocument:
    """A loaded model plus everything needed to edit it quickly and undo edits exactly."""

    def __init__(self, model: ModelProto, base_dir: Path | None = None):
        self.model = model
        self.base_dir = base_dir
        self.history = History()
        self.version = 0
        self.revision = 0  # bumped by every primitive change, undo included: keys derived caches
        self.shape_revision = 0  # bumped only by changes that can change inferred types or shapes
        self.derived: dict[str, Any] = {}  # caches of data derived from the model, keyed as each user needs
        self._initializer_revisions: dict[str, int] = {}
        self._tensor_revisions: dict[str, int] = {}
        self._scopes: dict[GraphPath, Scope] = {}
        self._pending: Pending | None = None
        self._replaying = False
        self._journal: deque[Step] = deque(maxlen=JOURNAL_STEPS)

    def initializer_revision(self, name: str) -> int:
        """The revision at which this initializer last changed (0: as loaded), for per-tensor caches."""
        return self._initializer_revisions.get(name, 0)

    def tensor_revision(self, name: str) -> int:
        """The revision at which the main graph's tensor of this name last got a new producer, input
        declaration or value (0: as loaded): what was derived about the name before then is stale."""
        return max(self._tensor_revisions.get(name, 0), self._initializer_revisions.get(name, 0))

    def restore_history(self, history: History, version: int) -> None:
        """Adopt the undo history and version saved with a snapshot of this very model state."""
        self.history = history
        self.version = version
        self._journal.clear()  # the steps before the snapshot are not known here

    def steps_since(self, version: int) -> list[Step] | None:
        """The steps from `version` to the current one, oldest first; None when they are not all known
        (a version older than the journal or than the snapshot this document was restored from)."""
        if version == self.version:
            return []
        if version > self.version or not self._journal or self._journal[0].version > version + 1:
            return None
        return [step for step in self._journal if step.version > version]

    # -- scopes and addressing -----------------------------------------------------------------
    @property
    def main(self) -> Scope:
        return self.scope(())

    def scope(self, path: GraphPath) -> Scope:
        cached = self._scopes.get(path)
        if cached is not None:
            return cached
        if not path:
            scope = Scope((), self.model.graph, GraphIndex(self.model.graph), None)
        else:
            parent = self.scope(path[:-1])
            pos, attr_name, gi = path[-1]
            graph = subgraph(parent.graph.node[pos], attr_name, gi)
            scope = Scope(path, graph, GraphIndex(graph), parent)
        self._scopes[path] = scope
        return scope

    def resolve(self, ref: NodeRef) -> tuple[Scope, NodeProto]:
        """A node by id in the main graph, or by a path [node, attribute, node, ...] into bodies."""
        if isinstance(ref, str):
            return self.main, self.main.find_node(ref)
        if not isinstance(ref, list) or len(ref) % 2 == 0 or not all(isinstance(p, str) for p in ref):
            raise EditError(
                "a node is addressed by its id, or by a path [node, attribute, node, ...] into If/Loop/Scan bodies",
                code="bad_node_ref",
                details={"node": ref},
            )
        scope = self.main
        node = scope.find_node(ref[0])
        for i in range(1, len(ref), 2):
            attr_name, _, gi_text = ref[i].partition(":")
            gi = int(gi_text) if gi_text.isdigit() else 0
            try:
                subgraph(node, attr_name, gi)
            except KeyError:
                raise NotFoundError(
                    f"node '{scope.node_id(node)}' has no subgraph '{ref[i]}'",
                    code="unknown_subgraph",
                    details={"node": ref},
                ) from None
            scope = self.scope(scope.path + ((scope.index.position(node), attr_name, gi),))
            node = scope.find_node(ref[i + 1])
        return scope, node

    def node_path(self, scope: Scope, node: NodeProto) -> NodeRef:
        """The reference that resolve() takes back to this node."""
        if not scope.path:
            return scope.node_id(node)
        parts: list[str] = []
        inner: Scope = scope
        while inner.parent is not None:
            owner = inner.parent.graph.node[inner.path[-1][0]]
            _, attr_name, gi = inner.path[-1]
            parts[:0] = [inner.parent.node_id(owner), attr_name if gi == 0 else f"{attr_name}:{gi}"]
            inner = inner.parent
        return parts + [scope.node_id(node)]

    # -- applying edits ------------------------------------------------------------------------
    def apply(self, edits: list[dict[str, Any]]) -> list[Transaction]:
        """Apply edits in order, all or nothing; each becomes one undoable history entry."""
        from .edits import apply_edit  # edits import this module

        applied: list[Transaction] = []
        # Everything a rejected batch must leave as it was, saved whole: the journal is bounded, so
        # popping one step per applied edit would lose steps of earlier edits in a long batch.
        version, done, redo_stack, journal = (
            self.version,
            len(self.history.done),
            list(self.history.undone),
            list(self._journal),
        )
        try:
            for number, edit in enumerate(edits):
                try:
                    applied.append(self._run(edit, apply_edit))
                except WorkbenchError as err:
                    if len(edits) > 1:
                        err.details.setdefault("edit_index", number)
                        err.message = f"edit {number} ({edit.get('op', '?')}): {err.message}"
                        err.args = (err.message,)
                    raise
        except BaseException:
            for tx in reversed(applied):
                self._revert(tx.changes)
            del self.history.done[done:]
            self.history.undone[:] = redo_stack
            self._journal.clear()
            self._journal.extend(journal)
            self.version = version
            raise
        return applied

    def _run(self, edit: dict[str, Any], body: Callable[[ModelDocument, dict[str, Any]], None]) -> Transaction:
        if not isinstance(edit, dict):
            raise EditError("each edit must be a JSON object with an 'op' field", code="bad_edit")
        tx = Transaction(edit=edit)
        shape_revision = self.shape_revision
        self._pending = Pending(tx)
        try:
            body(self, edit)
            self._validate(self._pending)
        except BaseException as err:
            self._revert(tx.changes)
            if not isinstance(err, WorkbenchError) and isinstance(err, Exception):
                raise EditError(
                    f"the edit could not be applied: {err}", code="edit_failed", details={"op": edit.get("op")}
                ) from err
            raise
        finally:
            self._pending = None
        self.history.record(tx)
        self.version += 1
        self._journal.append(Step(self.version, tx, False, shape_revision))
        return tx

    def undo(self) -> Transaction:
        if not self.history.done:
            raise EditError("nothing to undo", code="nothing_to_undo")
        tx = self.history.done.pop()
        shape_revision = self.shape_revision
        self._revert(tx.changes)
        self.history.undone.append(tx)
        self.version += 1
        self._journal.append(Step(self.version, tx, True, shape_revision))
        return tx

    def redo(self) -> Transaction:
        if not self.history.undone:
            raise EditError("nothing to redo", code="nothing_to_redo")
        tx = self.history.undone.pop()
        shape_revision = self.shape_revision
        for change in tx.changes:
            self._do(change)
        self.history.done.append(tx)
        self.version += 1
        self._journal.append(Step(self.version, tx, False, shape_revision))
        return tx

    def _revert(self, changes: list[Change]) -> None:
        for change in reversed(changes):
            self._do(change.inverse())

    # -- primitive changes (used by edits) ------------------------------------------------------
    def record(self, change: Change) -> None:
        """Apply one primitive change as part of the edit under way."""
        pending = self._require_pending()
        self._do(change)
        pending.tx.changes.append(change)
        if isinstance(change, ItemChange):
            for item in (change.old, change.new):
                if isinstance(item, NodeProto):
                    pending.touch(change.path, list(item.input) + list(item.output))
                elif item is not None:
                    pending.touch(change.path, [item_name(change.field, item)])
            if change.field == "initializer" and not change.path:
                for item in (change.old, change.new):
                    if item is not None:
                        pending.old_initializers.setdefault(item.name, change.old if item is change.old else None)
            if change.field == "node" and change.new is not None:
                node = self.scope(change.path).graph.node[change.pos]
                pending.nodes.append((change.path, node))
                if change.old is not None:
                    pending.old_nodes.setdefault(id(node), change.old)
                if change.old is None or list(change.old.input) != list(change.new.input) or has_subgraph(change.new):
                    pending.rewired.append((change.path, node))
            if change.path or (change.field == "node" and has_subgraph(change.old, change.new)):
                pending.full_check = True
        else:
            pending.full_check = True

    def insert_node(self, scope: Scope, pos: int, node: NodeProto) -> None:
        self.record(ItemChange(scope.path, "node", pos, None, node))

    def remove_node(self, scope: Scope, node: NodeProto, pos: int | None = None) -> None:
        """Remove a node (at `pos` when the caller knows it, saving the lookup)."""
        pos = scope.index.position(node) if pos is None else pos
        self.record(ItemChange(scope.path, "node", pos, copy_message(node), None))

    def replace_node(self, scope: Scope, node: NodeProto, new: NodeProto) -> None:
        self.record(ItemChange(scope.path, "node", scope.index.position(node), copy_message(node), new))

    def insert_item(self, scope: Scope, field_name: str, pos: int, item: Any) -> None:
        self.record(ItemChange(scope.path, field_name, pos, None, item))

    def remove_item(self, scope: Scope, field_name: str, pos: int) -> None:
        old = getattr(scope.graph, field_name)[pos]
        self.record(ItemChange(scope.path, field_name, pos, copy_message(old), None))

    def replace_item(self, scope: Scope, field_name: str, pos: int, item: Any) -> None:
        old = getattr(scope.graph, field_name)[pos]
        self.record(ItemChange(scope.path, field_name, pos, copy_message(old), item))

    def set_opsets(self, opsets: list[OperatorSetIdProto]) -> None:
        self.record(
            ModelChange(
                "opset_import", [copy_message(o) for o in self.model.opset_import], [copy_message(o) for o in opsets]
            )
        )

    def set_model_field(self, name: str, value: Any) -> None:
        self.record(ModelChange(name, getattr(self.model, name), value))

    def require_full_check(self) -> None:
        self._require_pending().full_check = True

    def _require_pending(self) -> Pending:
        if self._pending is None:
            raise RuntimeError("primitive changes are only made inside an edit")
        return self._pending

    def _do(self, change: Change) -> None:
        self.revision += 1
        if affects_shapes(change):
            self.shape_revision += 1
        if isinstance(change, ModelChange):
            if change.field == "opset_import":
                del self.model.opset_import[:]
                self.model.opset_import.extend(change.new)
            else:
                setattr(self.model, change.field, change.new)
            return
        scope = self.scope(change.path)
        if not change.path and change.field in ("node", "input"):
            for item in (change.old, change.new):
                for name in (item.output if change.field == "node" else [item.name]) if item is not None else ():
                    self._tensor_revisions[name] = self.revision
        if change.field == "initializer":
            for item in (change.old, change.new):
                if item is not None:
                    self._initializer_revisions[item.name] = self.revision
        scope.apply(change)
        if change.field == "node":
            self._invalidate_subscopes(scope, change)

    def _invalidate_subscopes(self, scope: Scope, change: ItemChange) -> None:
        """Subgraph indices are addressed by node position: drop them when positions or bodies change."""
        if change.old is None or change.new is None or has_subgraph(change.old, change.new):
            depth = len(scope.path)
            for path in [p for p in self._scopes if len(p) > depth and p[:depth] == scope.path]:
                del self._scopes[path]
        # a body edit changes what its owner reads from outside: refresh the owners' entries
        inner = scope
        while inner.parent is not None:
            owner = inner.parent.graph.node[inner.path[-1][0]]
            inner.parent.index.remove_node(owner)
            inner.parent.index.add_node(owner)
            inner = inner.parent

    # -- validation ----------------------------------------------------------------------------
    def _validate(self, pending: Pending) -> None:
        check_nodes(pending.nodes, self.checker_context())
        for path, names in pending.tensors.items():
            check_tensors(self.scope(path), names)
        for path, node in pending.rewired:
            check_order(self.scope(path), node)
        if pending.full_check:
            self._check_whole_model(pending.tx.changes)
        from .runcheck import check_edit_runs  # it runs onnxruntime, which this module does not need

        check_edit_runs(self, pending)

    def _check_whole_model(self, changes: list[Change]) -> None:
        """onnx's full checker; a problem the model already had before this edit is not the edit's fault
        (users bring imperfect models to fix them), so only a new problem refuses the edit."""
        from .skeleton import check_model_structure

        try:
            check_model_structure(self.model)
        except EditError as after:
            self._revert(changes)
            try:
                check_model_structure(self.model)
            except EditError as before:
                if before.message == after.message:
                    return
            finally:
                for change in changes:
                    self._do(change)
            raise after

    def checker_context(self) -> Any:
        ctx = onnx.checker.C.CheckerContext()
        ctx.ir_version = self.model.ir_version
        ctx.opset_imports = {o.domain: o.version for o in self.model.opset_import}
        return ctx

    def opset_version(self, domain: str = "") -> int | None:
        for o in self.model.opset_import:
            if o.domain in ((domain,) if domain not in ("", "ai.onnx") else ("", "ai.onnx")):
                return o.version
        return None

    # -- iteration helpers ---------------------------------------------------------------------
    def walk(self) -> Iterator[tuple[Scope, NodeProto]]:
        """Every node of every graph, outer before inner."""

        def visit(scope: Scope) -> Iterator[tuple[Scope, NodeProto]]:
            for pos, node in enumerate(scope.graph.node):
                yield scope, node
                for attr_name, gi, _ in subgraphs(node):
                    yield from visit(self.scope(scope.path + ((pos, attr_name, gi),)))

        return visit(self.main)
