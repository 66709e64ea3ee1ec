"""Errors of onnxruntime and of numpy files, as plain exceptions with a code, a message and details.

The server's one error handler answers them (``TooBig`` as 413, the others as 422); the graph engine and
the quantization analysis turn them into their own errors. ``cause`` keeps the library's exception for
callers that word the message their own way.
"""

from __future__ import annotations

from typing import Any


class RuntimeFailure(Exception):
    """Something onnxruntime or numpy refuses, for the reason ``code`` names."""

    def __init__(
        self, code: str, message: str, details: dict[str, Any] | None = None, cause: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.cause = cause


class TooBig(RuntimeFailure):
    """Over a size limit: an array, an archive, or a model over protobuf's 2 GB."""


class LoadFailed(RuntimeFailure):
    """onnxruntime cannot build a session of the model."""


class RunFailed(RuntimeFailure):
    """onnxruntime failed while running the model on these inputs."""


class BadInputs(RuntimeFailure):
    """The inputs do not fit the model (names, element types, values that cannot be made)."""


class BadArray(RuntimeFailure):
    """A .npy or .npz file that cannot be read as the arrays it claims to hold."""
