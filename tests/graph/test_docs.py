"""docs/edit-script.md documents every edit op, and each example is a well-formed edit."""

from __future__ import annotations

import json
import re
from pathlib import Path

from app.graph import EDIT_OPS

DOC = Path(__file__).resolve().parents[2] / "docs" / "edit-script.md"


def examples() -> list[dict]:
    found = []
    for block in re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S):
        pending = ""
        for line in block.strip().splitlines():
            pending += line
            try:
                parsed = json.loads(pending)
            except json.JSONDecodeError:
                continue
            found.extend(parsed["edits"] if "edits" in parsed else [parsed])
            pending = ""
        assert not pending, f"unparsable example: {pending[:80]}"
    return found


def test_every_op_has_an_example():
    documented = {e["op"] for e in examples()}
    assert documented == set(EDIT_OPS)
