"""One JSON shape for every error, `{"error": {"code", "message", "details"}}`, and the status it maps to.

Every error a client gets is built by `error_body`, which also keeps server folders out of it: a path in
the data folder is shown relative to it (onnx and onnxruntime name the files they fail on), and the
Python installation and the source folder by a placeholder (job tracebacks).

Storage, jobs, uploads, services and routes raise domain errors: a `ServiceError` of the kind that
says why (`NotFound`, `Conflict`, `TooLarge`, `Invalid`, ...), with a code and a message and no HTTP
type; one handler answers them and the engine's errors with the status of their kind. Engine errors
(`WorkbenchError`) are caused by what the client sent: a model that cannot be read or an edit that is
refused is 422; a name in the URL path that does not exist is turned into a `NotFound` before it gets
here. A full disk (or quota, or file size limit) is 507 wherever it happens.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..graph import WorkbenchError
from ..runtime.errors import RuntimeFailure, TooBig

log = logging.getLogger("onnx_workbench.server")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class ServiceError(Exception):
    """A request the service refuses, for the reason `code` names. Storage, jobs, uploads and routes raise
    it (as one of the kinds below) without speaking HTTP; the one handler of `install_error_handlers`
    answers it in the error shape, with the kind's `status`."""

    status = 422  # each kind sets the status its handler answers with

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class BadRequest(ServiceError):
    """The request cannot be read at all (a broken multipart body, an unsafe file name)."""

    status = 400


class NotFound(ServiceError):
    """What the request names does not exist (a session, a job, a tensor, a scope)."""

    status = 404


class Conflict(ServiceError):
    """The request does not fit the state it meets (a stale version, an analysis not ready)."""

    status = 409


class TooLarge(ServiceError):
    """Over a size limit of the service."""

    status = 413


class UnsupportedMedia(ServiceError):
    """A body of a content type the route does not take."""

    status = 415


class Invalid(ServiceError):
    """Well-formed but refused: what was sent makes no sense for this model or these settings."""

    status = 422


class DiskFull(ServiceError):
    """The server's disk (or quota, or file size limit) is full."""

    status = 507


def is_disk_full(err: BaseException) -> bool:
    """Out of disk space, quota or file size: code that turns other OSErrors into 4xx lets these through."""
    return isinstance(err, OSError) and err.errno in DISK_FULL


def disk_full_error(err: BaseException) -> DiskFull:
    """The server's disk is full: 507, with the system's words but not the path (which is the server's)."""
    assert isinstance(err, OSError)
    return DiskFull(
        "insufficient_storage",
        f"the server's disk is full ({err.strerror}): nothing of this "
        "request was saved, and a session it touched is as it was. Try again when space has been freed",
        {"errno": errno.errorcode.get(err.errno or 0, str(err.errno))},
    )


def unreadable_model(action: str, err: Exception) -> ServiceError:
    """An uploaded model that parses but trips the engine is still the upload's fault: 422, logged."""
    if is_disk_full(err):
        return disk_full_error(err)
    log.exception("engine failed while %s", action)
    return Invalid(
        "unreadable_model",
        f"the model could not be {action}: {type(err).__name__}: {err}",
        {"type": type(err).__name__},
    )


_HIDDEN: dict[str, str] = {}  # an absolute server folder, with its trailing separator -> what clients see instead


def hide_server_folder(folder: Path, shown_as: str) -> None:
    """Error texts name what is under `folder` as `shown_as` followed by the rest of the path."""
    for form in {str(folder.absolute()), str(folder.resolve())}:
        if form.rstrip(os.sep):  # never the file system's root
            _HIDDEN[form.rstrip(os.sep) + os.sep] = shown_as


for _folder in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
    hide_server_folder(Path(_folder), "<python>/")
hide_server_folder(Path(__file__).resolve().parents[2], "<app>/")


def client_text(text: str) -> str:
    """`text` with every hidden folder replaced, the deepest first (the data folder may lie in another)."""
    for folder in sorted(_HIDDEN, key=len, reverse=True):
        text = text.replace(folder, _HIDDEN[folder])
    return text


def _client_value(value: Any) -> Any:
    if isinstance(value, str):
        return client_text(value)
    if isinstance(value, (list, tuple)):
        return [_client_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _client_value(v) for k, v in value.items()}
    return value


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error as clients get it, with no server folder in its texts."""
    return {"error": {"code": code, "message": client_text(message), "details": _client_value(details or {})}}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, _jsonable(details or {})), status_code=status, headers=headers)


def _jsonable(value: Any) -> Any:
    """Details may hold tuples, numpy scalars or what a client sent (NaN, infinity): keep what JSON can
    say and give the rest as text, so that an error can always be answered."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def internal_error(err: Exception) -> dict[str, Any]:
    """The body of a 500: what failed, never how (the log has the traceback)."""
    return error_body(
        "internal_error",
        "the server failed on this request; the session is unchanged unless the answer said otherwise",
        {"type": type(err).__name__},
    )


def install_error_handlers(app: FastAPI) -> None:
    async def _domain_error(request: Request, err: Exception) -> JSONResponse:
        """The one mapping of domain errors to HTTP: the service's by their kind, the engine's as 422, the
        runtime's (onnxruntime, numpy files) as 413 when over a limit, else 422."""
        assert isinstance(err, (ServiceError, WorkbenchError, RuntimeFailure))
        status = (
            err.status
            if isinstance(err, ServiceError)
            else TooLarge.status
            if isinstance(err, TooBig)
            else Invalid.status
        )
        return error_response(status, err.code, err.message, err.details)

    app.add_exception_handler(ServiceError, _domain_error)
    app.add_exception_handler(WorkbenchError, _domain_error)
    app.add_exception_handler(RuntimeFailure, _domain_error)

    @app.exception_handler(OSError)
    async def _os_error(request: Request, err: OSError) -> JSONResponse:
        if not is_disk_full(err):
            raise err  # an unexpected failure: the UnexpectedErrors middleware answers 500 and closes
        log.warning("disk full on %s %s: %s", request.method, request.url.path, err)
        return await _domain_error(request, disk_full_error(err))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = []
        for item in err.errors():
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
            problems.append(f"{where}: {item.get('msg', 'invalid')}" if where else str(item.get("msg", "invalid")))
        message = "the request is not valid: " + "; ".join(problems[:5])
        return error_response(422, "invalid_request", message, {"problems": problems[:20]})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(err.status_code, "http_error")
        message = err.detail if isinstance(err.detail, str) else code.replace("_", " ")
        if err.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif err.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(err.status_code, code, message, headers=getattr(err, "headers", None))
