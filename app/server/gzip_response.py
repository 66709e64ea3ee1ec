"""Answering with JSON that is already gzipped (the graph view, its deltas, the layout), as is or unpacked."""

from __future__ import annotations

import gzip

from fastapi import Request, Response


def gzipped_json_response(request: Request, packed: bytes, headers: dict[str, str]) -> Response:
    """Gzipped JSON as is to clients that accept gzip, unpacked for the others."""
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(packed, media_type="application/json", headers={**headers, "Content-Encoding": "gzip"})
    return Response(gzip.decompress(packed), media_type="application/json", headers=headers)
