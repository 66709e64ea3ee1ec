"""Sessions and their edits: the upload, a session's state and history, edits, undo and redo."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .common import Delta, file_field, multipart_body

MAX_EDITS_PER_REQUEST = 10_000

UPLOAD_BODY = multipart_body(
    {
        "file": file_field("the .onnx model, or one .zip holding the model and its data files"),
        "data": file_field("external-data files of the model, named as the model refers to them", many=True),
    },
    required=["file"],
)


class EditsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    edits: list[dict[str, Any]] = Field(
        max_length=MAX_EDITS_PER_REQUEST,
        description="edits in the engine's vocabulary, applied all or nothing",
        examples=[[{"op": "rename_node", "node": "Conv_0", "to": "stem"}]],
    )
    expected_version: int | None = Field(
        default=None, description="refuse with 409 unless the session is at this version (optimistic concurrency)"
    )


class Changes(BaseModel):
    nodes_removed: list[str]
    nodes_upserted: list[str]
    lists_changed: list[str]
    model_changed: bool


class EditsResponse(BaseModel):
    version: int
    applied: int
    changes: Changes


class UndoResponse(BaseModel):
    version: int
    edit: dict[str, Any] = Field(description="the edit undone or redone")
    changes: Changes


class SessionCreated(BaseModel):
    id: str
    version: int
    summary: dict[str, Any]


class SessionInfo(BaseModel):
    id: str
    filename: str
    created: float
    version: int
    can_undo: bool
    can_redo: bool
    summary: dict[str, Any]


class HistoryResponse(BaseModel):
    version: int
    done: list[dict[str, Any]] = Field(description="applied edits, oldest first (undo takes the last)")
    undone: list[dict[str, Any]] = Field(description="undone edits, next redo first")


class NodeDetail(BaseModel):
    """One node of the main graph in full: its attributes with their values (tensors up to 4096 elements)."""

    id: str = Field(description="what edits take")
    name: str
    op_type: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    doc_string: str
    attributes: dict[str, Any]


class EditScript(BaseModel):
    format: str = Field(description="onnx-workbench/edits")
    version: int = Field(description="of the script format")
    edits: list[dict[str, Any]]


class ShapeReport(BaseModel):
    """What is not static, and why; every tensor's status (app/graph/shapes.py)."""

    model_config = ConfigDict(extra="allow")

    summary: str
    static: int
    total: int
    all_static: bool
    dynamic_dims: dict[str, list[dict[str, Any]]]
    tensors: dict[str, dict[str, Any]]
    data_dependent: list[dict[str, Any]]
    uninferred: list[dict[str, Any]]
    suggested_cut: Any = Field(description="a cut that leaves out the data-dependent part, or null")
    post_processing: Any = Field(description="the post-processing tail the model ends in, or null")


class GraphView(BaseModel):
    """The graph as the browser draws it (app/view/graph_view.py)."""

    model_config = ConfigDict(extra="allow")

    version: int
    graph: dict[str, Any] = Field(description="name, inputs, outputs, nodes, tensors, initializers")


class GraphDelta(Delta):
    """What changed in the graph view (onnx-workbench/graph-delta); with full, the client reads the view."""

    graph: dict[str, Any] | None = Field(default=None, description="the changes, in the view's shape")
