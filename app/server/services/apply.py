"""The stateless edit: an edit script applied to an uploaded model, with no session."""

from __future__ import annotations

import json
from pathlib import Path

from ...graph import EditError, WorkbenchError, load_model, save_model
from ...graph.script import parse_script
from ..downloads import EDITED
from ..errors import Invalid, unreadable_model
from ..uploads import Upload, stage_model


def apply_script(upload: Upload, staging: Path) -> list[Path]:
    """Apply the upload's 'script' to its model (streamed into `staging`/original); the edited model's
    files, written into `staging`/out."""
    script_file = upload.file("script")
    if script_file is not None:
        upload.files.remove(script_file)
        text = script_file.path.read_bytes()
        script_file.path.unlink()
    elif "script" in upload.fields:
        text = upload.fields["script"].encode()
    else:
        raise Invalid("missing_field", "the upload has no 'script' part (the edit script JSON)")
    try:
        edits = parse_script(json.loads(text))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise EditError(f"the edit script is not valid JSON: {err}", code="bad_script") from None
    model_path = stage_model(upload, staging / "original")
    try:
        doc = load_model(model_path)
    except WorkbenchError:
        raise
    except Exception as err:
        raise unreadable_model("read", err) from None
    doc.apply(edits)
    out = staging / "out"
    out.mkdir()
    return save_model(doc, out / f"{model_path.stem}{EDITED}.onnx")
