"""The incremental checks at the end of an edit: only what the edit touched is checked.

The nodes it changed go through onnx's own node checker; the tensors it touched must still be produced
where they are read, and a rewired node must still come after its producers (no cycle). The whole-model
check and the onnxruntime run check are the document's (they need its undo) and runcheck's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import onnx
from onnx import NodeProto, TensorProto

from .errors import EditError, first_line
from .history import GraphPath, Transaction
from .index import has_subgraphs
from .scope import Scope


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


def check_nodes(nodes: list[tuple[GraphPath, NodeProto]], ctx: Any) -> None:
    """onnx's node checker on each changed node; nodes with bodies are left to the whole-model check."""
    for _path, node in nodes:
        if has_subgraphs(node):
            continue
        try:
            onnx.checker.check_node(node, ctx)
        except onnx.checker.ValidationError as err:
            raise EditError(
                f"node '{node.name or node.op_type}' would be invalid: {first_line(err)}",
                code="invalid_node",
                details={"node": node.name},
            ) from None


def check_tensors(scope: Scope, names: set[str]) -> None:
    """Every touched tensor that is read (by a node or as a graph output) must still have a value."""
    outputs = set(scope.index.output_names())
    for name in sorted(names):
        users = scope.index.users(name)
        if (users or name in outputs) and not scope.visible(name):
            reader = f"node '{scope.node_id(users[0])}'" if users else "the graph outputs"
            raise EditError(
                f"tensor '{name}' would be read by {reader} but nothing would produce it",
                code="dangling_tensor",
                details={"tensor": name},
            )


def check_order(scope: Scope, node: NodeProto) -> None:
    """A changed node must come after its producers and before its consumers."""
    try:
        here = scope.index.position(node)
    except KeyError:
        return  # removed later in the same edit
    for name in scope.index.reads(node):
        producer = scope.index.producer.get(name)
        if producer is not None and scope.index.position(producer) >= here:
            raise EditError(
                f"node '{scope.node_id(node)}' would read '{name}' before it is produced "
                "(the graph would have a cycle)",
                code="cycle",
                details={"tensor": name},
            )
