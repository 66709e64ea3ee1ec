"""Writing what shape inference knows into the file: the declared shapes an NPU toolkit reads.

A toolkit imports the shapes the file declares (graph outputs and value_info), not the ones we infer.
So every edit that changes the model's input shapes rewrites those declarations from the resolved
shapes (shape computations folded) in the same undoable step, and the file never says less than the
report does.
"""

from __future__ import annotations

from typing import Any

from onnx import TypeProto, ValueInfoProto

from ..document import ModelDocument, copy_message
from ..errors import EditError


def declare_inferred(doc: ModelDocument) -> None:
    """Rewrite the main graph's value_info and output types from the resolved shapes.

    value_info gets one entry per node output that inference knows (stale exporter formulas are
    replaced); an entry inference knows nothing of (a custom op's output) is kept as declared. A
    declared output keeps what inference cannot tell and takes everything it can, its rank included.
    """
    from ..shapes import inferred_types

    try:
        types = inferred_types(doc)
    except EditError:
        return  # inference fails on this model: what it declares stays, and the report lists it
    scope = doc.main
    graph = scope.graph
    skip = scope.inputs | scope.names["output"] | scope.initializers
    old = {vi.name: vi.type for vi in graph.value_info}
    wanted: dict[str, TypeProto] = {}
    for node in graph.node:
        for name in node.output:
            if name and name not in skip:
                merged = merge_types(old.get(name), types.get(name))
                if merged is not None:
                    wanted[name] = merged
    # only what differs changes, so a second declaration (or one after a local fix) records little to undo
    for pos in reversed(range(len(graph.value_info))):
        vi = graph.value_info[pos]
        target = wanted.pop(vi.name, None)
        if target is None:
            doc.remove_item(scope, "value_info", pos)
        elif target != vi.type:
            updated = copy_message(vi)
            updated.type.CopyFrom(target)
            doc.replace_item(scope, "value_info", pos, updated)
    for name, type_proto in wanted.items():
        vi = ValueInfoProto(name=name)
        vi.type.CopyFrom(type_proto)
        doc.insert_item(scope, "value_info", len(graph.value_info), vi)
    for pos, out in enumerate(list(graph.output)):
        merged = merge_types(out.type, types.get(out.name))
        if merged is not None and merged != out.type:
            updated = copy_message(out)
            updated.type.CopyFrom(merged)
            doc.replace_item(scope, "output", pos, updated)


def merge_types(declared: TypeProto | None, inferred: TypeProto | None) -> TypeProto | None:
    """The type to declare: inference wins wherever it knows (a contradicting rank or dtype included);
    a dim it cannot tell keeps the declared value or name."""
    if not _has_shape(inferred):
        return declared if declared is not None and declared.WhichOneof("value") is not None else None
    assert inferred is not None
    if not _has_shape(declared):
        return inferred
    assert declared is not None
    got, had = inferred.tensor_type, declared.tensor_type
    if len(got.shape.dim) != len(had.shape.dim) or (had.elem_type and got.elem_type != had.elem_type):
        return inferred
    merged = copy_message(inferred)
    for dim, old in zip(merged.tensor_type.shape.dim, had.shape.dim, strict=True):
        if dim.HasField("dim_value") and dim.dim_value >= 0:
            continue
        if old.HasField("dim_value") and old.dim_value >= 0 or old.dim_param:
            dim.CopyFrom(old)
    return merged


def _has_shape(type_proto: TypeProto | None) -> bool:
    return (
        type_proto is not None
        and type_proto.WhichOneof("value") == "tensor_type"
        and type_proto.tensor_type.HasField("shape")
    )


def infer_shapes(doc: ModelDocument, edit: dict[str, Any]) -> None:
    """The declared shapes, refreshed from shape inference with shape computations folded."""
    declare_inferred(doc)
