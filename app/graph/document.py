"""The model being edited: the ModelProto, its lookup tables, the undo history, atomic edits.

An edit either applies fully and leaves a model that passes onnx's checker, or raises an
EditError naming what is wrong and leaves the model exactly as it was (protobuf-equal).
Validation is incremental: the nodes and tensors an edit touched are checked with onnx's own
node checker and our structural rules (every read tensor is produced, SSA, topological order);
edits that rewrite the whole graph run the full checker on a weightless copy.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from onnx import GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto

from .errors import EditError, NotFoundError, WorkbenchError, first_line
from .history import Change, GraphPath, History, ItemChange, ModelChange, Transaction
from .index import GraphIndex, has_subgraphs, subgraphs
from .positions import PositionMap

LIST_FIELDS = ("input", "output", "value_info", "initializer", "sparse_initializer")
NodeRef = str | list[str]
JOURNAL_STEPS = 64  # version steps a client can ask "what changed since" about


@dataclass
class Scope:
    """One graph of the model (main graph or a subgraph body) with its index."""

    path: GraphPath
    graph: GraphProto
    index: GraphIndex
    parent: "Scope | None"
    names: dict[str, set[str]] = field(default_factory=dict)

    item_positions: dict[str, PositionMap] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Name sets and positions of the graph's lists, so that no lookup scans 20,000 initializers."""
        for field_name in LIST_FIELDS:
            items = getattr(self.graph, field_name)
            self.names[field_name] = {_item_name(field_name, item) for item in items}
            self.item_positions[field_name] = PositionMap(
                lambda items=items, f=field_name: (_item_name(f, item) for item in items))

    @property
    def initializers(self) -> set[str]:
        return self.names["initializer"] | self.names["sparse_initializer"] if self.names["sparse_initializer"] \
            else self.names["initializer"]

    @property
    def inputs(self) -> set[str]:
        return self.names["input"]

    def find_item(self, field_name: str, name: str) -> int | None:
        """Position of the named entry of a graph list (None when absent, without scanning)."""
        if name not in self.names[field_name]:
            return None
        items = getattr(self.graph, field_name)
        pos = self.item_positions[field_name].get(name)
        if pos is not None and pos < len(items) and _item_name(field_name, items[pos]) == name:
            return pos
        for pos, item in enumerate(items):  # a name listed twice: the map keeps one of them
            if _item_name(field_name, item) == name:
                return pos
        return None

    def initializer(self, name: str) -> TensorProto | None:
        """The (dense) initializer of that name, if any."""
        pos = self.find_item("initializer", name)
        return None if pos is None else self.graph.initializer[pos]

    def defines(self, tensor: str) -> bool:
        """True when the tensor has a value here: produced, an initializer, or a graph input."""
        return tensor in self.index.producer or tensor in self.initializers or tensor in self.inputs

    def visible(self, tensor: str) -> bool:
        """Defined here or in an enclosing graph (outer-scope reads of If/Loop/Scan bodies)."""
        scope: Scope | None = self
        while scope is not None:
            if scope.defines(tensor):
                return True
            scope = scope.parent
        return False

    def node_id(self, node: NodeProto) -> str:
        """The public id: the name when unique and non-empty, else '@' + the first output."""
        if node.name and len(self.index.by_name.get(node.name, ())) == 1:
            return node.name
        first = next((o for o in node.output if o), "")
        if first:
            return "@" + first
        return f"#{self.index.position(node)}"

    def find_node(self, ref: str) -> NodeProto:
        same = self.index.by_name.get(ref, [])
        if len(same) == 1 and ref:
            return same[0]
        if ref.startswith("@") and ref[1:] in self.index.producer:
            return self.index.producer[ref[1:]]
        if ref.startswith("#") and ref[1:].isdigit() and int(ref[1:]) < len(self.graph.node):
            return self.graph.node[int(ref[1:])]
        if len(same) > 1:
            ids = ", ".join(self.node_id(n) for n in same[:5])
            raise NotFoundError(
                f"node name '{ref}' is used by {len(same)} nodes; address one of them by id ({ids})",
                code="ambiguous_node", details={"node": ref})
        raise NotFoundError(f"no node '{ref}' in the graph", code="unknown_node", details={"node": ref})


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


@dataclass
class Pending:
    """What the transaction under way has touched, for validation at its end."""

    tx: Transaction
    nodes: list[tuple[GraphPath, NodeProto]] = field(default_factory=list)
    rewired: list[tuple[GraphPath, NodeProto]] = field(default_factory=list)  # need the order check
    tensors: dict[GraphPath, set[str]] = field(default_factory=dict)
    full_check: bool = False
    old_nodes: dict[int, NodeProto] = field(default_factory=dict)  # id of a replaced node -> before the edit
    old_initializers: dict[str, TensorProto | None] = field(default_factory=dict)  # main graph, before the edit

    def touch(self, path: GraphPath, names: Iterable[str]) -> None:
        self.tensors.setdefault(path, set()).update(n for n in names if n)


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
            graph = _subgraph(parent.graph.node[pos], attr_name, gi)
            scope = Scope(path, graph, GraphIndex(graph), parent)
        self._scopes[path] = scope
        return scope

    def resolve(self, ref: NodeRef) -> tuple[Scope, NodeProto]:
        """A node by id in the main graph, or by a path [node, attribute, node, ...] into bodies."""
        if isinstance(ref, str):
            return self.main, self.main.find_node(ref)
        if not isinstance(ref, list) or len(ref) % 2 == 0 or not all(isinstance(p, str) for p in ref):
            raise EditError("a node is addressed by its id, or by a path [node, attribute, node, ...] "
                            "into If/Loop/Scan bodies", code="bad_node_ref", details={"node": ref})
        scope = self.main
        node = scope.find_node(ref[0])
        for i in range(1, len(ref), 2):
            attr_name, _, gi_text = ref[i].partition(":")
            gi = int(gi_text) if gi_text.isdigit() else 0
            try:
                _subgraph(node, attr_name, gi)
            except KeyError:
                raise NotFoundError(f"node '{scope.node_id(node)}' has no subgraph '{ref[i]}'",
                                    code="unknown_subgraph", details={"node": ref}) from None
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
        version, done, redo_stack, journal = self.version, len(self.history.done), list(self.history.undone), \
            list(self._journal)
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

    def _run(self, edit: dict[str, Any], body: Callable[["ModelDocument", dict[str, Any]], None]) -> Transaction:
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
                raise EditError(f"the edit could not be applied: {err}", code="edit_failed",
                                details={"op": edit.get("op")}) from err
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
                    pending.touch(change.path, [_item_name(change.field, item)])
            if change.field == "initializer" and not change.path:
                for item in (change.old, change.new):
                    if item is not None:
                        pending.old_initializers.setdefault(item.name, change.old if item is change.old else None)
            if change.field == "node" and change.new is not None:
                node = self.scope(change.path).graph.node[change.pos]
                pending.nodes.append((change.path, node))
                if change.old is not None:
                    pending.old_nodes.setdefault(id(node), change.old)
                if change.old is None or list(change.old.input) != list(change.new.input) \
                        or _has_subgraph(change.new):
                    pending.rewired.append((change.path, node))
            if change.path or (change.field == "node" and _has_subgraph(change.old, change.new)):
                pending.full_check = True
        else:
            pending.full_check = True

    def insert_node(self, scope: Scope, pos: int, node: NodeProto) -> None:
        self.record(ItemChange(scope.path, "node", pos, None, node))

    def remove_node(self, scope: Scope, node: NodeProto, pos: int | None = None) -> None:
        """Remove a node (at `pos` when the caller knows it, saving the lookup)."""
        pos = scope.index.position(node) if pos is None else pos
        self.record(ItemChange(scope.path, "node", pos, _copy(node), None))

    def replace_node(self, scope: Scope, node: NodeProto, new: NodeProto) -> None:
        self.record(ItemChange(scope.path, "node", scope.index.position(node), _copy(node), new))

    def insert_item(self, scope: Scope, field_name: str, pos: int, item: Any) -> None:
        self.record(ItemChange(scope.path, field_name, pos, None, item))

    def remove_item(self, scope: Scope, field_name: str, pos: int) -> None:
        old = getattr(scope.graph, field_name)[pos]
        self.record(ItemChange(scope.path, field_name, pos, _copy(old), None))

    def replace_item(self, scope: Scope, field_name: str, pos: int, item: Any) -> None:
        old = getattr(scope.graph, field_name)[pos]
        self.record(ItemChange(scope.path, field_name, pos, _copy(old), item))

    def set_opsets(self, opsets: list[OperatorSetIdProto]) -> None:
        self.record(ModelChange("opset_import", [_copy(o) for o in self.model.opset_import],
                                [_copy(o) for o in opsets]))

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
        if _affects_shapes(change):
            self.shape_revision += 1
        if isinstance(change, ModelChange):
            if change.field == "opset_import":
                del self.model.opset_import[:]
                self.model.opset_import.extend(change.new)
            else:
                setattr(self.model, change.field, change.new)
            return
        scope = self.scope(change.path)
        items = getattr(scope.graph, change.field)
        if not change.path and change.field in ("node", "input"):
            for item in (change.old, change.new):
                for name in (item.output if change.field == "node" else [item.name]) if item is not None else ():
                    self._tensor_revisions[name] = self.revision
        if change.field == "node":
            self._do_node(scope, change)
            return
        positions = scope.item_positions[change.field]
        if change.field == "initializer":
            for item in (change.old, change.new):
                if item is not None:
                    self._initializer_revisions[item.name] = self.revision
        if change.old is not None and change.new is not None:
            items[change.pos].CopyFrom(change.new)
            positions.renamed(change.pos, _item_name(change.field, change.old), _item_name(change.field, change.new))
        elif change.old is not None:
            del items[change.pos]
            positions.removed(change.pos, _item_name(change.field, change.old))
        else:
            items.insert(change.pos, change.new)
            positions.inserted(change.pos, _item_name(change.field, change.new))
        names = scope.names[change.field]
        if change.old is not None:
            names.discard(_item_name(change.field, change.old))
        if change.new is not None:
            names.add(_item_name(change.field, change.new))

    def _do_node(self, scope: Scope, change: ItemChange) -> None:
        nodes = scope.graph.node
        if change.old is not None and change.new is not None:
            node = nodes[change.pos]  # held across the change: its Python object must stay the same
            scope.index.remove_node(node)
            node.CopyFrom(change.new)
            scope.index.add_node(node)
        elif change.old is not None:
            node = nodes[change.pos]
            scope.index.remove_node(node)
            scope.index.positions.removed(change.pos, id(node))
            del nodes[change.pos]
        else:
            nodes.insert(change.pos, change.new)
            node = nodes[change.pos]
            scope.index.add_node(node)
            scope.index.positions.inserted(change.pos, id(node))
        self._invalidate_subscopes(scope, change)

    def _invalidate_subscopes(self, scope: Scope, change: ItemChange) -> None:
        """Subgraph indices are addressed by node position: drop them when positions or bodies change."""
        if change.old is None or change.new is None or _has_subgraph(change.old, change.new):
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
        ctx = self.checker_context()
        for path, node in pending.nodes:
            if has_subgraphs(node):
                continue  # checked with the whole model below
            try:
                onnx.checker.check_node(node, ctx)
            except onnx.checker.ValidationError as err:
                raise EditError(f"node '{node.name or node.op_type}' would be invalid: {first_line(err)}",
                                code="invalid_node", details={"node": node.name}) from None
        for path, names in pending.tensors.items():
            self._check_tensors(self.scope(path), names)
        for path, node in pending.rewired:
            self._check_order(self.scope(path), node)
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

    def _check_tensors(self, scope: Scope, names: set[str]) -> None:
        outputs = set(scope.index.output_names())
        for name in sorted(names):
            users = scope.index.users(name)
            if (users or name in outputs) and not scope.visible(name):
                reader = (f"node '{scope.node_id(users[0])}'" if users else "the graph outputs")
                raise EditError(f"tensor '{name}' would be read by {reader} but nothing would produce it",
                                code="dangling_tensor", details={"tensor": name})

    def _check_order(self, scope: Scope, node: NodeProto) -> None:
        """A changed node must come after its producers and before its consumers."""
        try:
            here = scope.index.position(node)
        except KeyError:
            return  # removed later in the same edit
        for name in scope.index.reads(node):
            producer = scope.index.producer.get(name)
            if producer is not None and scope.index.position(producer) >= here:
                raise EditError(f"node '{scope.node_id(node)}' would read '{name}' before it is produced "
                                "(the graph would have a cycle)", code="cycle", details={"tensor": name})

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


def _affects_shapes(change: Change) -> bool:
    """False for changes that cannot alter any tensor's inferred type: renaming a node, editing the
    output or value_info lists, new values of the same dtype and shape."""
    if not isinstance(change, ItemChange):
        return True
    old, new = change.old, change.new
    if change.field in ("output", "value_info"):
        return False
    if old is None or new is None:
        return True
    if change.field == "node":
        return (old.op_type, old.domain, list(old.input), list(old.output), list(old.attribute)) != \
            (new.op_type, new.domain, list(new.input), list(new.output), list(new.attribute))
    if change.field == "initializer":
        return (old.name, old.data_type, list(old.dims)) != (new.name, new.data_type, list(new.dims))
    return True


def _subgraph(node: NodeProto, attr_name: str, gi: int) -> GraphProto:
    for name, index, graph in subgraphs(node):
        if name == attr_name and index == gi:
            return graph
    raise KeyError(attr_name)


def _has_subgraph(*nodes: Any) -> bool:
    return any(isinstance(n, NodeProto) and has_subgraphs(n) for n in nodes)


def _item_name(field_name: str, item: Any) -> str:
    return item.values.name if field_name == "sparse_initializer" else item.name


def _copy(message: Any) -> Any:
    clone = type(message)()
    clone.CopyFrom(message)
    return clone


def copy_message(message: Any) -> Any:
    """A deep copy of one protobuf message (a node, a tensor), never of the whole model."""
    return _copy(message)
