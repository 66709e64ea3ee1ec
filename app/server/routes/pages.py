"""The browser editor's pages: `/` (open a model) and `/s/{session_id}` (the editor of a session).

Static files are served from app/static by a route of this router rather than a mount, so that the
app factory needs only `include_router` for the whole front end. URLs carry a content hash, so the
files can be cached for good and a new release is fetched at once.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..errors import NotFound
from ..session_store import SESSION_ID

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "static"
templates = Jinja2Templates(directory=str(ROOT / "templates"))
router = APIRouter(include_in_schema=False)

# Swagger UI comes from its CDN and sets inline styles; its one inline script is allowed by its hash
DOCS_POLICY = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net {scripts}; "
    "style-src https://cdn.jsdelivr.net 'unsafe-inline'; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}


@lru_cache(maxsize=1)
def asset_version() -> str:
    """A hash of every static file: part of each asset URL, so browsers never run a stale mix."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _page(request: Request, session_id: str | None) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "editor.html" if session_id else "index.html", {"session_id": session_id or "", "v": asset_version()}
    )


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    return _page(request, None)


@router.get("/s/{session_id}", response_class=HTMLResponse)
def editor(request: Request, session_id: str) -> Response:
    if not SESSION_ID.match(session_id):
        return RedirectResponse("/", status_code=303)
    return _page(request, session_id)


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    """FastAPI's Swagger UI page, with a policy that lets it load; it keeps the token given under
    Authorize across reloads."""
    page = get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} API",
        swagger_ui_parameters={"persistAuthorization": True},
    )
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode())
    )
    page.headers["Content-Security-Policy"] = DOCS_POLICY.format(scripts=hashes)
    return page


@router.get("/static/{version}/{path:path}")
def static_file(version: str, path: str) -> FileResponse:
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        raise NotFound("not_found", f"no static file '{path}'")
    cache = "public, max-age=31536000, immutable" if version == asset_version() else "no-cache"
    return FileResponse(
        target, media_type=_TYPES.get(target.suffix, "application/octet-stream"), headers={"Cache-Control": cache}
    )
