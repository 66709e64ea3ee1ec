"""What every area shares: the error body, the error responses routers declare, multipart request bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_SEED = (1 << 63) - 1  # seeds go to numpy's generators, which refuse negative ones


def multipart_body(
    properties: dict[str, dict[str, Any]], required: list[str] | None = None, optional: bool = False
) -> dict[str, Any]:
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


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. unknown_node, dangling_tensor, version_conflict")
    message: str = Field(description="for a person: what is wrong and what to do")
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorDetail


#: The error answers of a REST router (507: the disk is full).
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 409, 413, 415, 422, 507)
}


class Health(BaseModel):
    status: str
    version: str
    pid: int


class Delta(BaseModel):
    """What changed since the version a client holds; with full, no delta could be made and the client
    reads the whole answer again."""

    model_config = ConfigDict(extra="allow")

    format: str
    since: int
    version: int
    full: bool
    reason: str | None = Field(default=None, description="why no delta could be made (full only)")
