"""Undoable primitive changes and the undo/redo stacks.

Every edit is recorded as a list of primitive changes to one repeated field of one graph (or a
model-level field). A change keeps copies of only the items it touched, so undo and redo cost time
and memory in proportion to the edit, never to the model. Graphs are addressed by position paths
from the main graph; positions are valid at undo time because undo and redo run in stack order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

# A path from the main graph into a subgraph: ((node position, attribute name, graph index), ...).
GraphPath = tuple[tuple[int, str, int], ...]


@dataclass(frozen=True)
class ItemChange:
    """At `pos` of `graph.<field>`: `old` becomes `new` (None = absent, so insert or remove)."""

    path: GraphPath
    field: str
    pos: int
    old: Message | None
    new: Message | None

    def inverse(self) -> "ItemChange":
        return ItemChange(self.path, self.field, self.pos, self.new, self.old)


@dataclass(frozen=True)
class ModelChange:
    """A model-level field (opset_import, ir_version) from `old` to `new` values."""

    field: str
    old: Any
    new: Any

    def inverse(self) -> "ModelChange":
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
