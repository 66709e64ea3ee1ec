"""What the session routes answer, from a session held open: a node in full, edits applied, undone and
redone, the history, the static-shape report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...graph import WorkbenchError, shape_report
from ...graph.changes import describe_changes
from ...graph.history import Transaction
from ...graph.values import attribute_to_json
from ..errors import Conflict, NotFound, unreadable_model
from ..session_handle import SessionHandle

NODE_ATTRIBUTE_ELEMENTS = 4096  # tensor attributes up to this size come with their values


def node_detail(handle: SessionHandle, node_id: str) -> dict[str, Any]:
    """One node of the main graph in full (404 for an unknown id)."""
    scope = handle.doc.main
    try:
        node = scope.find_node(node_id)
    except WorkbenchError as err:
        raise NotFound(err.code, err.message, err.details) from None
    return {
        "id": scope.node_id(node),
        "name": node.name,
        "op_type": node.op_type,
        "domain": node.domain,
        "inputs": list(node.input),
        "outputs": list(node.output),
        "doc_string": node.doc_string,
        "attributes": {a.name: attribute_to_json(a, max_elements=NODE_ATTRIBUTE_ELEMENTS) for a in node.attribute},
    }


def apply_edits(handle: SessionHandle, edits: list[dict[str, Any]], expected_version: int | None) -> dict[str, Any]:
    """Apply edits all or nothing; the new version and what changed."""
    applied = handle.apply(edits, expected_version)
    return {"version": handle.doc.version, "applied": len(applied), "changes": describe_changes(handle.doc, applied)}


def undo(handle: SessionHandle, expected_version: int | None) -> dict[str, Any]:
    handle.check_version(expected_version)
    tx = _conflict_on_empty(handle.undo)
    return {"version": handle.doc.version, "edit": tx.edit, "changes": describe_changes(handle.doc, [tx], undo=True)}


def redo(handle: SessionHandle, expected_version: int | None) -> dict[str, Any]:
    handle.check_version(expected_version)
    tx = _conflict_on_empty(handle.redo)
    return {"version": handle.doc.version, "edit": tx.edit, "changes": describe_changes(handle.doc, [tx])}


def _conflict_on_empty(step: Callable[[], Transaction]) -> Transaction:
    """Nothing to undo/redo is a conflict with the session's state, not a malformed request."""
    try:
        return step()
    except WorkbenchError as err:
        if err.code in ("nothing_to_undo", "nothing_to_redo"):
            raise Conflict(err.code, err.message) from None
        raise


def history(handle: SessionHandle) -> dict[str, Any]:
    done = handle.doc.history
    return {
        "version": handle.doc.version,
        "done": [tx.edit for tx in done.done],
        "undone": [tx.edit for tx in reversed(done.undone)],
    }


def shapes(handle: SessionHandle) -> dict[str, Any]:
    """The static-shape report; a model onnx's shape inference fails on is the model's fault (422)."""
    try:
        return shape_report(handle.doc)
    except WorkbenchError:
        raise
    except Exception as err:  # onnx's inference can fail in ways it has no error type for
        raise unreadable_model("analysed for shapes", err) from None
