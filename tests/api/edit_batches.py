"""Random edit batches with one invalid edit, for the property tests of all-or-nothing batches.

The valid edits are drawn one after another against `ModelNames`, a small model of the names an
edit script refers to (node ids, tensors, readers, graph inputs and outputs, attributes), updated
as each edit would change them. So every valid edit of a batch applies in order on the real model,
and the invalid edit placed among them is the one the service refuses, at its index.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import numpy_helper

Edit = Any  # a JSON value; invalid edits are not always objects
Draw = Callable[[st.SearchStrategy[Any]], Any]

# Name fragments: slashes, dots, colons, spaces and CJK, as exported models and users name things.
PREFIXES = ("n", "/model.3/Conv_", "权重.", "a b:", "x_")
# Float attributes with a range every value of which the schema and the checker accept.
FLOAT_ATTRIBUTES = {
    "BatchNormalization": {"epsilon": (1e-6, 1e-2), "momentum": (0.0, 1.0)},
    "HardSigmoid": {"alpha": (0.01, 1.0), "beta": (0.0, 1.0)},
}
# Input shapes consistent with each other: a batch dim of 1 and H x W = 48 x 192, fixed or named.
INPUT_SHAPES = ([1, 3, 48, 192], ["N", 3, 48, 192], [1, 3, "H", "W"], ["N", 3, "H", "W"])
DIM_VALUES = {"N": 1, "H": 48, "W": 192}
SMALL_CONSTANT = 64  # elements: set_initializer sends the values inline
MAX_ADDED_OUTPUTS = 2  # add_output infers shapes (0.2 s on this model): a few per batch, not dozens
NON_FINITE = (math.nan, math.inf, -math.inf)


@dataclass(eq=False)  # nodes are told apart by identity, as in the graph
class Node:
    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attributes: set[str]
    value: tuple[str, tuple[int, ...]] | None = None  # dtype and shape of a Constant's value
    added: bool = False


@dataclass
class ModelNames:
    """The names a batch's edits refer to, as they stand after the edits drawn so far."""

    nodes: list[Node]
    graph_input: str
    input_shape: list[Any]
    outputs: list[str]
    added_outputs: set[str] = field(default_factory=set)
    counter: itertools.count = field(default_factory=itertools.count)

    @classmethod
    def of(cls, model: onnx.ModelProto) -> ModelNames:
        nodes = []
        for n in model.graph.node:
            value = None
            if n.op_type == "Constant":
                array = numpy_helper.to_array(n.attribute[0].t)
                value = (str(array.dtype), array.shape)
            nodes.append(Node(n.name, n.op_type, list(n.input), list(n.output), {a.name for a in n.attribute}, value))
        (graph_input,) = model.graph.input
        shape = [
            d.dim_value if d.HasField("dim_value") else d.dim_param if d.dim_param in DIM_VALUES else None
            for d in graph_input.type.tensor_type.shape.dim
        ]
        return cls(nodes, graph_input.name, shape, [o.name for o in model.graph.output])

    def copy(self) -> ModelNames:
        return copy.deepcopy(self)

    # -- looking up ------------------------------------------------------------------------------
    def node_id(self, node: Node) -> str:
        """What the service calls the node: its name when set (all names here are unique), else '@' + output."""
        return node.name or "@" + node.outputs[0]

    def fresh(self, draw: Draw) -> str:
        return f"{draw(st.sampled_from(PREFIXES))}{next(self.counter)}"

    def compute(self) -> list[Node]:
        return [n for n in self.nodes if n.op_type != "Constant"]

    def readers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def tensors(self) -> list[str]:
        return [self.graph_input] + [o for n in self.nodes for o in n.outputs if o]

    def first_of(self, op_type: str) -> Node:
        return next(n for n in self.nodes if n.op_type == op_type)

    # -- changing ------------------------------------------------------------------------------
    def rename_tensor(self, old: str, new: str) -> None:
        for n in self.nodes:
            n.inputs = [new if t == old else t for t in n.inputs]
            n.outputs = [new if t == old else t for t in n.outputs]
        self.outputs = [new if t == old else t for t in self.outputs]
        if old in self.added_outputs:
            self.added_outputs = (self.added_outputs - {old}) | {new}
        if self.graph_input == old:
            self.graph_input = new

    def remove(self, node: Node, reconnect: bool) -> None:
        self.nodes.remove(node)
        if reconnect:
            for reader in self.readers(node.outputs[0]):
                reader.inputs = [node.inputs[0] if t == node.outputs[0] else t for t in reader.inputs]


# -- valid edits ---------------------------------------------------------------------------------
# Each takes the names and a draw function and returns an edit that applies, after updating the
# names as the edit changes them, or None when the model offers nothing for it now.


def rename_node(names: ModelNames, draw: Draw) -> Edit:
    node = draw(st.sampled_from(names.nodes))
    edit = {"op": "rename_node", "node": names.node_id(node), "to": names.fresh(draw)}
    node.name = edit["to"]
    return edit


def rename_tensor(names: ModelNames, draw: Draw) -> Edit:
    old = draw(st.sampled_from(names.tensors()))
    new = names.fresh(draw)
    names.rename_tensor(old, new)
    return {"op": "rename_tensor", "tensor": old, "to": new}


def set_float_attribute(names: ModelNames, draw: Draw) -> Edit:
    node = draw(st.sampled_from([n for n in names.nodes if n.op_type in FLOAT_ATTRIBUTES]))
    attribute, (low, high) = draw(st.sampled_from(sorted(FLOAT_ATTRIBUTES[node.op_type].items())))
    node.attributes.add(attribute)
    return {"op": "set_attribute", "node": names.node_id(node), "name": attribute, "value": draw(st.floats(low, high))}


def set_list_attribute(names: ModelNames, draw: Draw) -> Edit:
    node = draw(st.sampled_from([n for n in names.nodes if n.op_type == "Conv"]))
    return {"op": "set_attribute", "node": names.node_id(node), "name": "dilations", "value": [1, 1]}


def remove_attribute(names: ModelNames, draw: Draw) -> Edit:
    present = [
        (n, a)
        for n in names.nodes
        if n.op_type in FLOAT_ATTRIBUTES
        for a in sorted(n.attributes & FLOAT_ATTRIBUTES[n.op_type].keys())
    ]
    if not present:
        return None
    node, attribute = draw(st.sampled_from(present))
    node.attributes.discard(attribute)
    return {"op": "remove_attribute", "node": names.node_id(node), "name": attribute}


def set_initializer(names: ModelNames, draw: Draw) -> Edit:
    node = draw(
        st.sampled_from(
            [n for n in names.nodes if n.value and n.value[0] == "float32" and math.prod(n.value[1]) <= SMALL_CONSTANT]
        )
    )
    seed = draw(st.integers(0, 2**32 - 1))
    value = np.random.default_rng(seed).standard_normal(node.value[1]).astype(np.float32)  # type: ignore[index]
    return {"op": "set_initializer", "name": node.outputs[0], "value": value.tolist()}


def insert_identity(names: ModelNames, draw: Draw) -> Edit:
    """An Identity on a tensor of the data path, read by nobody yet (see `rewire_to_identity`)."""
    tensor = draw(st.sampled_from([names.graph_input] + [n.outputs[0] for n in names.compute()]))
    node = Node(names.fresh(draw), "Identity", [tensor], [names.fresh(draw)], set(), added=True)
    names.nodes.append(node)
    return {
        "op": "add_node",
        "op_type": "Identity",
        "name": node.name,
        "inputs": node.inputs,
        "outputs": node.outputs,
        "attributes": {},
    }


def rewire_to_identity(names: ModelNames, draw: Draw) -> Edit:
    """A reader of an inserted Identity's input reads the Identity's output instead."""
    choices = [
        (identity, reader, index)
        for identity in names.nodes
        if identity.added
        for reader in names.readers(identity.inputs[0])
        if reader is not identity
        for index, tensor in enumerate(reader.inputs)
        if tensor == identity.inputs[0]
    ]
    if not choices:
        return None
    identity, reader, index = draw(st.sampled_from(choices))
    reader.inputs[index] = identity.outputs[0]
    return {"op": "set_node_input", "node": names.node_id(reader), "index": index, "tensor": identity.outputs[0]}


def delete_node(names: ModelNames, draw: Draw) -> Edit:
    """Relu and Identity nodes, inserted or not: with reconnect when their output is read, plainly when not."""
    choices = [n for n in names.nodes if n.op_type in ("Relu", "Identity") and n.outputs[0] not in names.outputs]
    if not choices:
        return None
    node = draw(st.sampled_from(choices))
    reconnect = bool(names.readers(node.outputs[0]))
    if not reconnect and not node.added:
        return None
    edit = {"op": "delete_node", "node": names.node_id(node), "reconnect": reconnect}
    names.remove(node, reconnect)
    return edit


def add_output(names: ModelNames, draw: Draw) -> Edit:
    if len(names.added_outputs) >= MAX_ADDED_OUTPUTS:
        return None
    tensor = draw(st.sampled_from([n.outputs[0] for n in names.compute() if n.outputs[0] not in names.outputs]))
    names.outputs.append(tensor)
    names.added_outputs.add(tensor)
    return {"op": "add_output", "tensor": tensor}


def remove_output(names: ModelNames, draw: Draw) -> Edit:
    if not names.added_outputs:
        return None
    tensor = draw(st.sampled_from(sorted(names.added_outputs)))
    names.outputs.remove(tensor)
    names.added_outputs.discard(tensor)
    return {"op": "remove_output", "name": tensor}


def set_shape(names: ModelNames, draw: Draw) -> Edit:
    shape = list(draw(st.sampled_from(INPUT_SHAPES)))
    names.input_shape = shape
    return {"op": "set_shape", "tensor": names.graph_input, "shape": shape}


def fix_dim(names: ModelNames, draw: Draw) -> Edit:
    named = [d for d in names.input_shape if isinstance(d, str)]
    if not named:
        return None
    dim = draw(st.sampled_from(named))
    names.input_shape = [DIM_VALUES[dim] if d == dim else d for d in names.input_shape]
    return {"op": "fix_dim", "dim": dim, "value": DIM_VALUES[dim]}


# cheap edits often, the ones that infer shapes (add_output) seldom
VALID = (
    (rename_node,) * 4
    + (rename_tensor,) * 4
    + (set_float_attribute,) * 3
    + (
        set_list_attribute,
        remove_attribute,
        set_initializer,
        set_initializer,
        insert_identity,
        insert_identity,
        rewire_to_identity,
        rewire_to_identity,
        delete_node,
        delete_node,
        remove_output,
        set_shape,
        fix_dim,
    )
    + (add_output,)
)


def valid_edit(names: ModelNames, draw: Draw) -> Edit:
    while True:
        edit = draw(st.sampled_from(VALID))(names, draw)
        if edit is not None:
            return edit


# -- invalid edits -------------------------------------------------------------------------------
# Each returns an edit the service must refuse in the state the names describe; names are not changed.


def unknown_node(names: ModelNames, draw: Draw) -> Edit:
    missing = draw(st.sampled_from(["", "@"])) + names.fresh(draw)
    return draw(
        st.sampled_from(
            [
                {"op": "rename_node", "node": missing, "to": names.fresh(draw)},
                {"op": "delete_node", "node": missing, "reconnect": True},
                {"op": "set_attribute", "node": missing, "name": "alpha", "value": 0.5},
                {"op": "remove_attribute", "node": missing, "name": "alpha"},
                {
                    "op": "set_node_input",
                    "node": [missing, "then_branch", "x"],
                    "index": 0,
                    "tensor": names.graph_input,
                },
            ]
        )
    )


def unknown_tensor(names: ModelNames, draw: Draw) -> Edit:
    missing = names.fresh(draw)
    reader = draw(st.sampled_from(names.compute()))
    return draw(
        st.sampled_from(
            [
                {"op": "rename_tensor", "tensor": missing, "to": names.fresh(draw)},
                {"op": "set_node_input", "node": names.node_id(reader), "index": 0, "tensor": missing},
                {"op": "add_output", "tensor": missing},
                {"op": "remove_output", "name": missing},
                {"op": "set_initializer", "name": missing, "value": [1.0]},
                {"op": "set_shape", "tensor": missing, "shape": [1]},
            ]
        )
    )


def bad_attribute_value(names: ModelNames, draw: Draw) -> Edit:
    conv = draw(st.sampled_from([n for n in names.nodes if n.op_type == "Conv"]))
    norm = draw(st.sampled_from([n for n in names.nodes if n.op_type == "BatchNormalization"]))
    return draw(
        st.sampled_from(
            [
                {
                    "op": "set_attribute",
                    "node": names.node_id(conv),
                    "name": "group",
                    "value": draw(st.sampled_from(["abc", 1.5, [1, 2], {"dtype": "float32", "value": [1.0]}])),
                },
                {"op": "set_attribute", "node": names.node_id(conv), "name": "strides", "value": "fast"},
                {"op": "set_attribute", "node": names.node_id(norm), "name": "epsilon", "value": "small"},
                {"op": "set_attribute", "node": names.node_id(norm), "name": "no_such_attribute", "value": 1},
            ]
        )
    )


def cycle(names: ModelNames, draw: Draw) -> Edit:
    """An early convolution made to read what the classifier computes from it."""
    early = draw(st.sampled_from([n for n in names.nodes if n.op_type == "Conv"][:3]))
    late = draw(st.sampled_from([names.first_of("Softmax"), names.first_of("MatMul")]))
    return {"op": "set_node_input", "node": names.node_id(early), "index": 0, "tensor": late.outputs[0]}


def taken_name(names: ModelNames, draw: Draw) -> Edit:
    a, b = draw(st.lists(st.sampled_from([n for n in names.nodes if n.name]), min_size=2, max_size=2, unique=True))
    t, u = draw(st.lists(st.sampled_from(names.tensors()), min_size=2, max_size=2, unique=True))
    return draw(
        st.sampled_from(
            [
                {"op": "rename_node", "node": names.node_id(a), "to": b.name},
                {"op": "rename_tensor", "tensor": t, "to": u},
            ]
        )
    )


def dangling(names: ModelNames, draw: Draw) -> Edit:
    """A node of the data path deleted while others still read its output."""
    node = draw(st.sampled_from([n for n in names.compute() if names.readers(n.outputs[0])]))
    return {"op": "delete_node", "node": names.node_id(node)}


def wrong_shape(names: ModelNames, draw: Draw) -> Edit:
    node = draw(
        st.sampled_from(
            [
                n
                for n in names.nodes
                if n.value and n.value[0] == "float32" and 1 < math.prod(n.value[1]) <= SMALL_CONSTANT
            ]
        )
    )
    size = math.prod(node.value[1]) + draw(st.sampled_from([-1, 1]))  # type: ignore[index]
    return {"op": "set_initializer", "name": node.outputs[0], "value": [0.5] * size}


def wrong_op(names: ModelNames, draw: Draw) -> Edit:
    node = names.node_id(draw(st.sampled_from(names.compute())))
    return draw(
        st.sampled_from(
            [
                {"op": "frobnicate", "node": node},
                {"op": 7},
                {"node": node, "to": "x"},
                {"op": "rename_node"},
                {"op": "rename_node", "node": node, "to": ""},
                {"op": "rename_node", "node": 5, "to": "x"},
                {"op": "set_node_input", "node": node, "index": "zero", "tensor": names.graph_input},
                {"op": "set_shape", "tensor": names.graph_input, "shape": "1x3"},
            ]
        )
    )


def not_an_object(names: ModelNames, draw: Draw) -> Edit:
    return draw(st.sampled_from([5, "rename_node", [], None, True]))


def last_output(names: ModelNames, draw: Draw) -> Edit:
    if len(names.outputs) > 1:
        return unknown_node(names, draw)
    return {"op": "remove_output", "name": names.outputs[0]}


INVALID = (
    unknown_node,
    unknown_tensor,
    bad_attribute_value,
    cycle,
    taken_name,
    dangling,
    wrong_shape,
    wrong_op,
    not_an_object,
    last_output,
)


def non_finite(names: ModelNames, draw: Draw) -> Edit:
    """A NaN or an infinity where a number goes: JSON cannot carry it, Python's JSON writes it anyway."""
    bad = draw(st.sampled_from(NON_FINITE))
    edit = draw(st.sampled_from([set_float_attribute, set_initializer]))(names.copy(), draw)
    if edit["op"] == "set_attribute":
        return {**edit, "value": bad}
    values = np.array(edit["value"], dtype=np.float64)
    values.flat[draw(st.integers(0, values.size - 1))] = bad
    return {**edit, "value": values.tolist()}


# 1-300 edits, the lengths around the 64-step delta journal often
SIZES = st.one_of(st.sampled_from([1, 2, 63, 64, 65, 66, 300]), st.integers(1, 300))


@st.composite
def batch_with_one_invalid(
    draw: Draw,
    model: onnx.ModelProto,
    invalid: tuple[Callable[..., Edit], ...] = INVALID,
    sizes: st.SearchStrategy[int] = SIZES,
    applied: int = 0,
) -> tuple[list[Edit], int]:
    """(edits, index of the invalid one): valid edits in sequence, one invalid edit among them, after
    at least `applied` valid ones when the batch is long enough."""
    size = draw(sizes)
    position = draw(st.integers(min(applied, size - 1), size - 1))
    names = ModelNames.of(model)
    edits = [
        draw(st.sampled_from(invalid))(names, draw) if i == position else valid_edit(names, draw) for i in range(size)
    ]
    return edits, position
