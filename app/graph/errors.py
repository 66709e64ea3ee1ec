"""Errors the engine raises for bad input: each carries a code and a message a person can act on."""

from __future__ import annotations

from typing import Any


def first_line(err: BaseException) -> str:
    """The first line of a library's error text (onnx and onnxruntime append long dumps), or its type."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class WorkbenchError(Exception):
    """Base of every error caused by what a user sent (a file, an edit, a name)."""

    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class ModelLoadError(WorkbenchError):
    """The file is not a readable ONNX model (not protobuf, truncated, unsafe external data)."""

    code = "invalid_model_file"


class EditError(WorkbenchError):
    """An edit was refused; the document is left exactly as it was."""

    code = "invalid_edit"


class NotFoundError(EditError):
    """An edit names a node, tensor, dim or attribute that the model does not have."""

    code = "not_found"
