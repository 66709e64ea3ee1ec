"""One JSON shape for every error, `{"error": {"code", "message", "details"}}`, and the status it maps to.

Engine errors (`WorkbenchError`) are caused by what the client sent: a model that cannot be read or
an edit that is refused is 422; a name in the URL path that does not exist is turned into a 404 by
the route before it gets here.
"""
from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..graph import WorkbenchError

log = logging.getLogger("onnx_workbench.server")

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
                 422: "invalid_request"}


class ApiError(Exception):
    """An error the service answers with directly (unknown session, stale version, upload too large)."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


def unreadable_model(action: str, err: Exception) -> ApiError:
    """An uploaded model that parses but trips the engine is still the upload's fault: 422, logged."""
    log.exception("engine failed while %s", action)
    return ApiError(422, "unreadable_model", f"the model could not be {action}: {type(err).__name__}: {err}",
                    {"type": type(err).__name__})


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError) -> JSONResponse:
        return error_response(err.status, err.code, err.message, err.details)

    @app.exception_handler(WorkbenchError)
    async def _workbench_error(request: Request, err: WorkbenchError) -> JSONResponse:
        return error_response(422, err.code, err.message, err.details)

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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "the server failed on this request; the session is unchanged "
                              "unless the answer said otherwise", {"type": type(err).__name__})
