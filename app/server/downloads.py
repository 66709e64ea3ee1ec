"""File downloads: one file as is, a model with its data file as a zip streamed while it is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from .zipstream import CHUNK, zip_stream


def open_files(paths: list[Path]) -> list[tuple[str, BinaryIO, int]]:
    """Open while the session is locked: a later export may remove the files, open handles keep them."""
    return [(p.name, open(p, "rb"), p.stat().st_size) for p in paths]


def stream_file(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def file_response(files: list[tuple[str, BinaryIO, int]], stem: str,
                  background: BackgroundTask | None = None) -> StreamingResponse:
    """One file as is; a model with its data file as a zip streamed while it is written."""
    if len(files) == 1:
        name, handle, size = files[0]
        return StreamingResponse(stream_file(handle), media_type="application/octet-stream", background=background,
                                 headers={"Content-Disposition": f'attachment; filename="{name}"',
                                          "Content-Length": str(size)})
    return StreamingResponse(zip_stream([(name, handle) for name, handle, _ in files]), media_type="application/zip",
                             background=background,
                             headers={"Content-Disposition": f'attachment; filename="{stem}.zip"'})
