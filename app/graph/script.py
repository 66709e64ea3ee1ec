"""Edit scripts: the applied edits of a session as a replayable JSON document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import EditError

SCRIPT_FORMAT = "onnx-workbench/edits"
SCRIPT_VERSION = 1


def script_document(edits: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": SCRIPT_FORMAT, "version": SCRIPT_VERSION, "edits": edits}


def parse_script(data: Any) -> list[dict[str, Any]]:
    """The edits of a script; a bare list of edits is accepted too."""
    edits: Any
    if isinstance(data, list):
        edits = data
    elif isinstance(data, dict):
        if data.get("format", SCRIPT_FORMAT) != SCRIPT_FORMAT:
            raise EditError(
                f"not an edit script: format is {data.get('format')!r}, expected '{SCRIPT_FORMAT}'", code="bad_script"
            )
        if data.get("version", SCRIPT_VERSION) != SCRIPT_VERSION:
            raise EditError(
                f"edit script version {data.get('version')!r} is not supported (expected 1)", code="bad_script"
            )
        edits = data.get("edits")
    else:
        edits = None
    if not isinstance(edits, list) or not all(isinstance(e, dict) for e in edits):
        raise EditError(
            'an edit script is {"format": "onnx-workbench/edits", "version": 1, "edits": [...]} '
            "with one object per edit",
            code="bad_script",
        )
    return edits


def read_script(path: str | Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EditError(f"no such edit script: {path}", code="file_not_found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise EditError(f"{Path(path).name} is not valid JSON: {err}", code="bad_script") from None
    return parse_script(data)
