"""Undoable primitive changes and the undo/redo stacks.

Every edit is recorded as a list of primitive changes to one repeated field of one graph (or a
model-level field). A change keeps copies of only the items it touched, so undo and redo cost time
and memory in proportion to the edit, never to the model. Graphs are addressed by position paths
from the main graph; positions are valid at undo time because undo and redo run in stack order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A path from the main graph into a subgraph: ((node position, attribute name, graph index), ...).
GraphPath = tuple[tuple[int, str, int], ...]


@dataclass(frozen=True)
class ItemChange:
    """At `pos` of `graph.<field>`: `old` becomes `new` (None = absent, so insert or remove)."""

    path: GraphPath
    field: str
    pos: int
    # an item of the field's list: a NodeProto, TensorProto, ValueInfoProto, ... (Any: protobuf's Message
    # type has none of their fields)
    old: Any
    new: Any

    def inverse(self) -> ItemChange:
        return ItemChange(self.path, self.field, self.pos, self.new, self.old)


@dataclass(frozen=True)
class ModelChange:
    """A model-level field (opset_import, ir_version) from `old` to `new` values."""

    field: str
    old: Any
    new: Any

    def inverse(self) -> ModelChange:
        return ModelChange(self.field, self.new, self.old)


Change = ItemChange | ModelChange


@dataclass
class Transaction:
    """The changes of one applied edit, with the edit as the user wrote it."""

    edit: dict[str, Any]
    changes: list[Change] = field(default_factory=list)


@dataclass
class History:
    """Applied edits (undo stack) and undone ones (redo stack)."""

    done: list[Transaction] = field(default_factory=list)
    undone: list[Transaction] = field(default_factory=list)

    def record(self, tx: Transaction) -> None:
        self.done.append(tx)
        self.undone.clear()

    def script(self) -> list[dict[str, Any]]:
        """The applied edits in order: replaying them on the original model gives the current one."""
        return [tx.edit for tx in self.done]


def affects_shapes(change: Change) -> bool:
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
        return (old.op_type, old.domain, list(old.input), list(old.output), list(old.attribute)) != (
            new.op_type,
            new.domain,
            list(new.input),
            list(new.output),
            list(new.attribute),
        )
    if change.field == "initializer":
        return (old.name, old.data_type, list(old.dims)) != (new.name, new.data_type, list(new.dims))
    return True


def copy_message(message: Any) -> Any:
    """A deep copy of one protobuf message (a node, a tensor), never of the whole model."""
    clone = type(message)()
    clone.CopyFrom(message)
    return clone
