"""A zip archive produced while it is sent: no temporary copy of a multi-GB model and its data."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import BinaryIO

CHUNK = 1 << 20
FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the same model always gives the same bytes


class _Sink:
    """A write-only, unseekable file that hands what was written to the generator below."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Part of the file protocol ZipFile asks for; it never closes a file it was given."""

    def drain(self) -> Iterator[bytes]:
        chunks, self.chunks = self.chunks, []
        yield from chunks


def zip_stream(files: list[tuple[str, BinaryIO]]) -> Iterator[bytes]:
    """Yield a stored (uncompressed, zip64) archive of the open files, closing each when done."""
    sink = _Sink()
    try:
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, handle in files:
                info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
                with handle, archive.open(info, "w", force_zip64=True) as entry:
                    while chunk := handle.read(CHUNK):
                        entry.write(chunk)
                        yield from sink.drain()
                yield from sink.drain()
        yield from sink.drain()
    finally:
        for _, handle in files:
            handle.close()
