"""ASGI middleware: the optional bearer token on /api, and a cap on request bodies read into memory.

Plain ASGI rather than BaseHTTPMiddleware, so streaming uploads and downloads pass through untouched.
"""
from __future__ import annotations

import hmac
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body

STREAMED_TYPES = (b"multipart/form-data", b"application/octet-stream", b"application/x-npy", b"application/npy")


async def _send_error(send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class TokenAuth:
    """When a token is configured, every /api request needs `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str | None):
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.expected is None or scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(given, self.expected):
            await _send_error(send, 401, "unauthorized", "this server needs 'Authorization: Bearer <token>' "
                              "(the value of ONNX_WORKBENCH_TOKEN)", [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """Bodies that the framework reads whole (JSON) are capped; streamed uploads have their own limits."""

    def __init__(self, app: ASGIApp, json_limit: int, stream_limit: int):
        self.app = app
        self.json_limit = json_limit
        self.stream_limit = stream_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        limit = self.stream_limit if content_type in STREAMED_TYPES else self.json_limit
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _send_error(send, 413, "too_large", f"the request body is {int(declared):,} bytes; the limit "
                              f"for this kind of request is {limit:,}")
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # an HTTPException passes through the framework's body parsing as it is
                    raise HTTPException(413, f"the request body is over {limit:,} bytes")
            return message

        await self.app(scope, counted, send)
