"""ASGI middleware: the optional bearer token on /api, a cap on request bodies read into memory, and the
answer to an unexpected exception.

Plain ASGI rather than BaseHTTPMiddleware, so streaming uploads and downloads pass through untouched.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any, TypeVar

from python_multipart.multipart import parse_options_header
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body, internal_error, log

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
# the editor's pages: their scripts, styles and data come from this server only, and no page may frame them
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def streams_body(*content_types: str) -> Callable[[Endpoint], Endpoint]:
    """Declare that a route reads request bodies of these content types as a stream (to disk, under
    its own limit). Every other body, on any route, is read whole into memory by the framework and is
    held to the JSON cap: what the client declares cannot lift a route's cap."""

    def mark(endpoint: Endpoint) -> Endpoint:
        endpoint.streamed_types = frozenset(content_types)  # type: ignore[attr-defined]
        return endpoint

    return mark


async def _send_json(send: Send, status: int, content: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _HttpMiddleware:
    """A middleware of HTTP requests: lifespan and other scopes pass through untouched."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class SecurityHeaders(_HttpMiddleware):
    """Headers every answer carries: no content-type sniffing, no framing, no Referer (session ids are in
    page URLs); HTML pages get the Content-Security-Policy above unless the route set its own."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", PAGE_POLICY)
            await send(message)

        await self.app(scope, receive, with_headers)


class UnexpectedErrors(_HttpMiddleware):
    """An exception no handler took answers 500 with the error shape and `Connection: close`, and ends here.

    Starlette's ServerErrorMiddleware sends its 500 and then raises again, for the server to log; uvicorn,
    seeing a response already sent, drops the connection without having said so, and a client that
    keeps connections alive fails its next request on it. This logs the error itself, so nothing is
    raised further; when the response had already started it cannot be answered, and the server's
    close of the connection is the only signal left.
    """

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as err:
            if started:
                raise
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            await _send_json(send, 500, internal_error(err), [(b"connection", b"close")])


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
            refusal = error_body(
                "unauthorized", "this server needs 'Authorization: Bearer <token>' (the value of ONNX_WORKBENCH_TOKEN)"
            )
            await _send_json(send, 401, refusal, [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)


class BodyLimit(_HttpMiddleware):
    """Caps every request body by what its route does with it: the JSON cap unless the route streams
    bodies of this content type (`streams_body`), then the upload limit (the route checks its own, lower
    one too). The route is known once routing is done, which is before anything reads the body, so the
    cap is chosen at the first read; Content-Length is checked then, and chunked bodies as they arrive."""

    def __init__(self, app: ASGIApp, json_limit: int, stream_limit: int):
        super().__init__(app)
        self.json_limit = json_limit
        self.stream_limit = stream_limit

    def limit_of(self, scope: Scope) -> int:
        streamed: frozenset[str] = getattr(scope.get("endpoint"), "streamed_types", frozenset())
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        return (
            self.stream_limit
            if parse_options_header(content_type)[0].decode("latin-1") in streamed
            else self.json_limit
        )

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit: int | None = None
        received = 0

        async def counted() -> Message:
            nonlocal limit, received
            if limit is None:
                limit = self.limit_of(scope)
                declared = dict(scope["headers"]).get(b"content-length", b"")
                if declared.isdigit() and int(declared) > limit:
                    raise HTTPException(
                        413, f"the request body is {int(declared):,} bytes; the limit for this request is {limit:,}"
                    )
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # an HTTPException passes through the framework's body parsing as it is
                    raise HTTPException(413, f"the request body is over {limit:,} bytes, the limit for this request")
            return message

        await self.app(scope, counted, send)
