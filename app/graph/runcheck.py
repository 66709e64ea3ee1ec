"""Run the nodes an edit changed in onnxruntime before accepting it.

onnx's checker and shape inference accept edits that onnxruntime then refuses at run time (a
kernel_shape that does not match the weight, an axis out of range, a Reshape to an impossible
shape). Each changed node is built into a one-node model with its real constant inputs (weights,
Constant nodes, folded shape computations) and synthetic data of its inferred shapes for the rest,
and run. Synthetic data can itself be what fails (a computed index, a shape read from data), so a
changed node is refused only when its version before the edit runs on the same inputs; a new node
only when every input that is not a constant is a float tensor, where synthetic data is as good as
real.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import NodeProto, TensorProto, TypeProto, helper, numpy_helper

from .errors import EditError, first_line
from .folding import constant_node_value, is_constant_node
from .index import has_subgraphs
from .io import map_tensor

if TYPE_CHECKING:
    from .document import ModelDocument
    from .validation import Pending

RUNNABLE_DOMAINS = ("", "ai.onnx", "com.microsoft")
SYMBOLIC_SIZE = 8  # every unknown dim: equal sizes keep broadcasting inputs consistent with each other
MAX_ELEMENTS = 1 << 22  # per synthetic input or constant; a bigger node is not run
MAX_NODES = 64  # nodes run per edit; whole-graph edits change more and are not run


@dataclass
class Inputs:
    """Where a node's input values come from: real constants, or the types to make data for."""

    constants: dict[str, np.ndarray]
    types: dict[str, TypeProto]
    old_constants: dict[str, np.ndarray] = field(default_factory=dict)  # values before the edit


def check_edit_runs(doc: ModelDocument, pending: Pending) -> None:
    """Run the main-graph nodes an edit changed, and the readers of the weights it replaced."""
    from .shapes import latest_resolution

    scope = doc.main
    edited = {id(n): n for path, n in pending.nodes if not path}
    nodes = dict(edited)
    weights = set(pending.old_initializers)
    weights.update(o for n in edited.values() if is_constant_node(n) for o in n.output)
    for name in weights:
        nodes.update((id(n), n) for n in scope.index.users(name))
    if not nodes or len(nodes) > MAX_NODES:
        return
    resolution = latest_resolution(doc)
    if resolution is None:
        return
    read = partial(map_tensor, base_dir=doc.base_dir)
    befores = [pending.old_nodes[key] for key in nodes if key in pending.old_nodes]
    needed = {t for n in [*nodes.values(), *befores] for t in n.input if t}
    # a name whose producer changed since the resolution (renamed, rewired, edited) has no known type
    current = {t for t in needed if doc.tensor_revision(t) <= resolution.revision}
    constants = {t: resolution.values[t] for t in current if t in resolution.values}
    for name in needed:
        producer = scope.index.producer.get(name)
        source: TensorProto | NodeProto | None = (
            producer if producer is not None and is_constant_node(producer) else scope.initializer(name)
        )
        if source is None:
            continue
        value = constant_value(source, read)
        if value is None:
            return  # a weight too big to run here
        constants[name] = value
    old_constants = {}
    for name, tensor in pending.old_initializers.items():
        if tensor is not None and (value := constant_value(tensor, read)) is not None:
            old_constants[name] = value
    for old in pending.old_nodes.values():
        if is_constant_node(old) and old.output and (value := constant_value(old, read)) is not None:
            old_constants[old.output[0]] = value
    inputs = Inputs(constants, {t: resolution.types[t] for t in current if t in resolution.types}, old_constants)
    opsets = {o.domain: o.version for o in doc.model.opset_import}
    for key, node in nodes.items():
        # an edited node is compared with itself before the edit (None: new); a reader of a replaced
        # weight with itself reading the old weight
        before = pending.old_nodes.get(key) if key in edited else node
        check_runs(node, before, inputs, opsets, doc.model.ir_version, scope.node_id(node))


def check_runs(
    node: NodeProto, old: NodeProto | None, inputs: Inputs, opsets: dict[str, int], ir_version: int, name: str
) -> None:
    """Refuse (EditError with onnxruntime's message) when `node` fails where `old` ran."""
    if node.domain not in RUNNABLE_DOMAINS or has_subgraphs(node) or is_constant_node(node):
        return
    feeds = _feeds(node, inputs)
    if feeds is None:
        return
    error = _run(node, feeds, inputs.constants, opsets, ir_version)
    if error is None:
        return
    if old is not None:
        before = _feeds(old, inputs)
        if (
            before is None
            or _run(old, before, {**inputs.constants, **inputs.old_constants}, opsets, ir_version) is not None
        ):
            return  # it failed (or cannot run) before the edit too: the synthetic inputs, not the edit
    elif any(feeds[t].dtype.kind != "f" for t in feeds):
        return  # made-up integer data (indices, shapes) proves nothing about a new node
    raise EditError(
        f"node '{name}' would fail in onnxruntime: {error}", code="fails_in_onnxruntime", details={"node": name}
    )


def _feeds(node: NodeProto, inputs: Inputs) -> dict[str, np.ndarray] | None:
    """Synthetic values for the inputs that are not constants; None when some cannot be made."""
    rng = np.random.default_rng(0)
    feeds: dict[str, np.ndarray] = {}
    for name in node.input:
        if not name or name in inputs.constants or name in feeds:
            continue
        type_proto = inputs.types.get(name)
        if (
            type_proto is None
            or type_proto.WhichOneof("value") != "tensor_type"
            or not type_proto.tensor_type.HasField("shape")
        ):
            return None
        tensor_type = type_proto.tensor_type
        shape = [
            d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else SYMBOLIC_SIZE
            for d in tensor_type.shape.dim
        ]
        if math.prod(shape) > MAX_ELEMENTS:
            return None
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
        except (KeyError, TypeError, ValueError):
            return None
        if dtype.kind == "f":
            feeds[name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iub":
            feeds[name] = np.zeros(shape, dtype)
        else:
            return None
    return feeds


def _run(
    node: NodeProto,
    feeds: dict[str, np.ndarray],
    constants: dict[str, np.ndarray],
    opsets: dict[str, int],
    ir_version: int,
) -> str | None:
    """onnxruntime's first line of error for this node on these inputs, None when it runs."""
    from app.runtime.errors import RuntimeFailure
    from app.runtime.session import open_session, run

    inits = [
        numpy_helper.from_array(np.asarray(constants[t]), t) for t in dict.fromkeys(node.input) if t and t in constants
    ]
    graph = helper.make_graph(
        [node],
        "check",
        [
            helper.make_tensor_value_info(t, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
            for t, v in feeds.items()
        ],
        [helper.make_empty_tensor_value_info(o) for o in node.output if o],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()], ir_version=ir_version
    )
    try:
        run(open_session(model, level="none", threads=1, log_level=4), None, feeds)
    except RuntimeFailure as err:
        return _clean(first_line(err.cause or err))
    return None


def _clean(message: str) -> str:
    """onnxruntime's message without its status code and source location."""
    message = re.sub(r"^(\[ONNXRuntimeError\] : )?\d+ : [A-Z_]+ : ", "", message).split("Status Message: ")[-1]
    return re.sub(r"^/\S+:\d+ .*? was false\. ", "", message).strip()


def constant_value(tensor: TensorProto | NodeProto, read: Any) -> np.ndarray | None:
    """A small constant's value (an initializer read with `read`, or a Constant node); None if too big."""
    if isinstance(tensor, NodeProto):
        return constant_node_value(tensor, MAX_ELEMENTS * 8)
    if math.prod(tensor.dims) > MAX_ELEMENTS:
        return None
    try:
        return np.asarray(read(tensor))
    except (onnx.onnx_cpp2py_export.checker.ValidationError, ValueError, OSError):
        return None
