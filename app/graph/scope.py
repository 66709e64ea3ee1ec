"""One graph of the model (the main graph or a subgraph body) with its lookup tables.

The tables (the index, the name sets and positions of the graph's lists) are what keep edits fast on
20,000-node models; `Scope.apply` makes one primitive list change and keeps them in step with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from onnx import GraphProto, NodeProto, TensorProto

from .errors import NotFoundError
from .history import GraphPath, ItemChange
from .index import GraphIndex, has_subgraphs, subgraphs
from .positions import PositionMap

LIST_FIELDS = ("input", "output", "value_info", "initializer", "sparse_initializer")


@dataclass
class Scope:
    """One graph of the model (main graph or a subgraph body) with its index."""

    path: GraphPath
    graph: GraphProto
    index: GraphIndex
    parent: Scope | None
    names: dict[str, set[str]] = field(default_factory=dict)

    item_positions: dict[str, PositionMap] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Name sets and positions of the graph's lists, so that no lookup scans 20,000 initializers."""
        for field_name in LIST_FIELDS:
            items = getattr(self.graph, field_name)
            self.names[field_name] = {item_name(field_name, item) for item in items}
            self.item_positions[field_name] = PositionMap(_list_names(field_name, items))

    @property
    def initializers(self) -> set[str]:
        return (
            self.names["initializer"] | self.names["sparse_initializer"]
            if self.names["sparse_initializer"]
            else self.names["initializer"]
        )

    @property
    def inputs(self) -> set[str]:
        return self.names["input"]

    def find_item(self, field_name: str, name: str) -> int | None:
        """Position of the named entry of a graph list (None when absent, without scanning)."""
        if name not in self.names[field_name]:
            return None
        items = getattr(self.graph, field_name)
        pos = self.item_positions[field_name].get(name)
        if pos is not None and pos < len(items) and item_name(field_name, items[pos]) == name:
            return pos
        for pos, item in enumerate(items):  # a name listed twice: the map keeps one of them
            if item_name(field_name, item) == name:
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
                code="ambiguous_node",
                details={"node": ref},
            )
        raise NotFoundError(f"no node '{ref}' in the graph", code="unknown_node", details={"node": ref})

    def apply(self, change: ItemChange) -> None:
        """Make one change to one of this graph's lists, and to the name sets, positions and index with it."""
        if change.field == "node":
            self._apply_node(change)
            return
        items = getattr(self.graph, change.field)
        positions = self.item_positions[change.field]
        if change.old is not None and change.new is not None:
            items[change.pos].CopyFrom(change.new)
            positions.renamed(change.pos, item_name(change.field, change.old), item_name(change.field, change.new))
        elif change.old is not None:
            del items[change.pos]
            positions.removed(change.pos, item_name(change.field, change.old))
        else:
            items.insert(change.pos, change.new)
            positions.inserted(change.pos, item_name(change.field, change.new))
        names = self.names[change.field]
        if change.old is not None:
            names.discard(item_name(change.field, change.old))
        if change.new is not None:
            names.add(item_name(change.field, change.new))

    def _apply_node(self, change: ItemChange) -> None:
        nodes = self.graph.node
        if change.old is not None and change.new is not None:
            node = nodes[change.pos]  # held across the change: its Python object must stay the same
            self.index.remove_node(node)
            node.CopyFrom(change.new)
            self.index.add_node(node)
        elif change.old is not None:
            node = nodes[change.pos]
            self.index.remove_node(node)
            self.index.positions.removed(change.pos, id(node))
            del nodes[change.pos]
        else:
            nodes.insert(change.pos, change.new)
            node = nodes[change.pos]
            self.index.add_node(node)
            self.index.positions.inserted(change.pos, id(node))


def _list_names(field_name: str, items: Any) -> Callable[[], Iterator[str]]:
    """The key source of a list's PositionMap: the names of its items as they are when read."""
    return lambda: (item_name(field_name, item) for item in items)


def item_name(field_name: str, item: Any) -> str:
    """The name of an entry of a graph list (a sparse initializer's is its values' name)."""
    return item.values.name if field_name == "sparse_initializer" else item.name


def subgraph(node: NodeProto, attr_name: str, gi: int) -> GraphProto:
    """The body `attr_name` (graph `gi` of a GRAPHS attribute) of an If/Loop/Scan node; KeyError if none."""
    for name, index, graph in subgraphs(node):
        if name == attr_name and index == gi:
            return graph
    raise KeyError(attr_name)


def has_subgraph(*nodes: Any) -> bool:
    """True when any of these (nodes or None) has a body."""
    return any(isinstance(n, NodeProto) and has_subgraphs(n) for n in nodes)
