"""File downloads: one file as is, a model with its data file as a zip streamed while it is written,
and the one `Content-Disposition` every download is named by."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from .zipstream import CHUNK, zip_stream

EDITED = ".edited"  # the edited model's file name, so that saving it never replaces the original
_NOT_IN_NAMES = re.compile(r"[\x00-\x1f\x7f/\\]")  # controls and path separators: never part of a saved name
_NOT_IN_FALLBACK = re.compile(r'[^\x20-\x7e]|["%;\\]')  # what the quoted ASCII name cannot carry safely


def content_disposition(filename: str) -> str:
    """`attachment` naming `filename` whatever it holds (RFC 6266): an ASCII `filename="..."` with every
    unsafe character replaced, for old clients, and the exact name as `filename*=UTF-8''...` (RFC 5987).
    Headers are Latin-1, so a raw non-Latin-1 name cannot be sent; and a quote, semicolon or line
    break in a raw name would end the parameter and let an uploaded file name add its own."""
    name = _NOT_IN_NAMES.sub("_", filename) or "download"
    fallback = _NOT_IN_FALLBACK.sub("_", name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def open_files(paths: list[Path]) -> list[tuple[str, BinaryIO, int]]:
    """Open while the session is locked: a later export may remove the files, open handles keep them."""
    return [(p.name, open(p, "rb"), p.stat().st_size) for p in paths]


def stream_file(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def file_response(
    files: list[tuple[str, BinaryIO, int]], stem: str, background: BackgroundTask | None = None
) -> StreamingResponse:
    """One file as is; a model with its data file as a zip streamed while it is written."""
    if len(files) == 1:
        name, handle, size = files[0]
        return StreamingResponse(
            stream_file(handle),
            media_type="application/octet-stream",
            background=background,
            headers={"Content-Disposition": content_disposition(name), "Content-Length": str(size)},
        )
    return StreamingResponse(
        zip_stream([(name, handle) for name, handle, _ in files]),
        media_type="application/zip",
        background=background,
        headers={"Content-Disposition": content_disposition(f"{stem}.zip")},
    )
