"""The edit vocabulary: one function per "op" of an edit object (the public contract of scripts and REST)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..document import ModelDocument
from ..errors import EditError
from ..values import check_numbers
from .interface import add_input, add_output, fix_dim, make_static, remove_input, remove_output, set_shape
from .nodes import add_node, delete_node, remove_attribute, rename_node, set_attribute, set_node_input
from .static import infer_shapes
from .tensors import constants_to_initializers, rename_tensor, set_initializer
from .whole import cleanup, convert_opset, extract, fold_constants

EditFunction = Callable[[ModelDocument, dict[str, Any]], None]

EDIT_OPS: dict[str, EditFunction] = {
    "delete_node": delete_node,
    "rename_node": rename_node,
    "rename_tensor": rename_tensor,
    "set_node_input": set_node_input,
    "add_node": add_node,
    "set_attribute": set_attribute,
    "remove_attribute": remove_attribute,
    "set_initializer": set_initializer,
    "constants_to_initializers": constants_to_initializers,
    "add_input": add_input,
    "remove_input": remove_input,
    "add_output": add_output,
    "remove_output": remove_output,
    "set_shape": set_shape,
    "fix_dim": fix_dim,
    "make_static": make_static,
    "extract": extract,
    "fold_constants": fold_constants,
    "cleanup": cleanup,
    "infer_shapes": infer_shapes,
    "convert_opset": convert_opset,
}

# Edits that may rewrite any part of the graph (app/graph/edits/whole.py): a client that held the model
# before one of these, or before its undo, reads the model again rather than a list of what changed.
WHOLE_GRAPH_OPS = frozenset(
    {"extract", "fold_constants", "cleanup", "infer_shapes", "convert_opset", "constants_to_initializers"}
)


def apply_edit(doc: ModelDocument, edit: dict[str, Any]) -> None:
    op = edit.get("op")
    function = EDIT_OPS.get(op) if isinstance(op, str) else None
    if function is None:
        raise EditError(
            f"unknown edit op {op!r}; known ops: {', '.join(EDIT_OPS)}", code="unknown_op", details={"op": op}
        )
    check_numbers(edit)
    function(doc, edit)
