"""Request and response bodies of the REST API (what /docs shows and what requests are checked against)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def multipart_body(properties: dict[str, dict[str, Any]], required: list[str] | None = None,
                   optional: bool = False) -> dict[str, Any]:
    """``openapi_extra`` describing a multipart/form-data request: the routes parse uploads themselves
    (streamed to disk), so FastAPI cannot derive the form from their parameters."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"requestBody": {"required": not optional, "content": {"multipart/form-data": {"schema": schema}}}}


def file_field(description: str, many: bool = False) -> dict[str, Any]:
    """A form field holding one uploaded file, or several with ``many``."""
    binary = {"type": "string", "format": "binary"}
    return {**({"type": "array", "items": binary} if many else binary), "description": description}

MAX_EDITS_PER_REQUEST = 10_000
MAX_SEED = (1 << 63) - 1  # seeds go to numpy's generators, which refuse negative ones


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. unknown_node, dangling_tensor, version_conflict")
    message: str = Field(description="for a person: what is wrong and what to do")
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorDetail


class EditsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    edits: list[dict[str, Any]] = Field(max_length=MAX_EDITS_PER_REQUEST,
                                        description="edits in the engine's vocabulary, applied all or nothing",
                                        examples=[[{"op": "rename_node", "node": "Conv_0", "to": "stem"}]])
    expected_version: int | None = Field(default=None, description="refuse with 409 unless the session is at "
                                         "this version (optimistic concurrency)")


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


class JobState(BaseModel):
    id: str
    kind: str
    session: str | None
    state: str = Field(description="queued, running, succeeded, failed, cancelled or interrupted")
    progress: float
    message: str
    detail: dict[str, Any] | None = Field(default=None, description="structured progress of the job's current "
                                          "phase, e.g. {\"phase\", \"done\", \"total\", \"unit\", \"percent\"}")
    result: Any = None
    error: dict[str, Any] | None = None
    created: float
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False


class Health(BaseModel):
    status: str
    version: str
    pid: int
