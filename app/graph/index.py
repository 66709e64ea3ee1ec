"""Lookup tables over one graph: tensor -> producer and consumers, name -> nodes.

Kept up to date edit by edit (never rebuilt per edit) so that an edit on a 20,000-node model costs
time in proportion to what it touches. Nodes are held by reference: protobuf (upb) keeps a node's
Python object stable for as long as the node stays in its graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from onnx import AttributeProto, GraphProto, NodeProto

from .positions import PositionMap


def subgraphs(node: NodeProto) -> Iterator[tuple[str, int, GraphProto]]:
    """The bodies of If/Loop/Scan (and any custom op with graph attributes): (attribute, index, graph)."""
    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            yield attr.name, 0, attr.g
        elif attr.type == AttributeProto.GRAPHS:
            for i, g in enumerate(attr.graphs):
                yield attr.name, i, g


def has_subgraphs(node: NodeProto) -> bool:
    return any(attr.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for attr in node.attribute)


def outer_reads(graph: GraphProto) -> list[str]:
    """Names a subgraph reads from enclosing scopes (used but not defined inside it), in first-use order."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.values.name for t in graph.sparse_initializer if t.values.name}
    seen: dict[str, None] = {}
    for node in graph.node:
        for name in node_reads(node):
            if name and name not in defined:
                seen.setdefault(name, None)
        defined.update(o for o in node.output if o)
    for v in graph.output:
        if v.name not in defined:
            seen.setdefault(v.name, None)
    return list(seen)


def node_reads(node: NodeProto) -> list[str]:
    """Every tensor a node reads: its inputs and, for control flow, what its bodies read from outside."""
    reads = [name for name in node.input if name]
    for _, _, body in subgraphs(node):
        reads.extend(n for n in outer_reads(body) if n not in reads)
    return reads


class GraphIndex:
    """Producer/consumer/name tables for one GraphProto (the main graph or one subgraph body)."""

    def __init__(self, graph: GraphProto):
        self.graph = graph
        self.producer: dict[str, NodeProto] = {}
        self.consumers: dict[str, list[NodeProto]] = {}
        self.by_name: dict[str, list[NodeProto]] = {}
        self.owners: dict[int, NodeProto] = {}  # nodes with subgraph bodies
        self._reads: dict[int, list[str]] = {}
        # object ids are valid only while the objects live: the index holds every node it maps
        self.positions = PositionMap(lambda: (id(n) for n in self.graph.node))
        for node in graph.node:
            self.add_node(node)

    # -- maintenance -------------------------------------------------------------------------
    def add_node(self, node: NodeProto) -> None:
        reads = node_reads(node)
        self._reads[id(node)] = reads
        for name in reads:
            self.consumers.setdefault(name, []).append(node)
        for name in node.output:
            if name:
                self.producer[name] = node
        self.by_name.setdefault(node.name, []).append(node)
        if has_subgraphs(node):
            self.owners[id(node)] = node

    def remove_node(self, node: NodeProto) -> None:
        self.owners.pop(id(node), None)
        for name in self._reads.pop(id(node)):
            users = self.consumers[name]
            _remove_identity(users, node)
            if not users:
                del self.consumers[name]
        for name in node.output:
            if name and self.producer.get(name) is node:
                del self.producer[name]
        same = self.by_name[node.name]
        _remove_identity(same, node)
        if not same:
            del self.by_name[node.name]

    # -- queries -------------------------------------------------------------------------------
    def reads(self, node: NodeProto) -> list[str]:
        return self._reads[id(node)]

    def users(self, tensor: str) -> list[NodeProto]:
        return self.consumers.get(tensor, [])

    def position(self, node: NodeProto) -> int:
        pos = self.positions.get(id(node))
        if pos is None or self.graph.node[pos] is not node:
            raise KeyError(node.name)
        return pos

    def output_names(self) -> list[str]:
        return [v.name for v in self.graph.output]

    def downstream(self, roots: Iterable[NodeProto]) -> list[NodeProto]:
        """The roots and every node that reads, directly or not, what they produce."""
        found: dict[int, NodeProto] = {}
        stack = list(roots)
        while stack:
            node = stack.pop()
            if id(node) in found:
                continue
            found[id(node)] = node
            for out in node.output:
                stack.extend(self.users(out))
        return list(found.values())

    def upstream(self, tensors: Iterable[str], stop: set[str] | frozenset[str] = frozenset()) -> list[NodeProto]:
        """Every node needed to compute `tensors`, not crossing the tensors in `stop`."""
        found: dict[int, NodeProto] = {}
        stack = [t for t in tensors if t not in stop]
        seen: set[str] = set()
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            node = self.producer.get(name)
            if node is None or id(node) in found:
                continue
            found[id(node)] = node
            stack.extend(t for t in self.reads(node) if t not in stop)
        return list(found.values())


def _remove_identity(items: list[NodeProto], node: NodeProto) -> None:
    for i, candidate in enumerate(items):
        if candidate is node:
            del items[i]
            return
