"""Running a session's model in onnxruntime on uploaded or random inputs, and comparing it with the
original upload on the same inputs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Invalid
from ..runner import compare, random_inputs, read_npz, run_model
from ..schemas.common import MAX_SEED
from ..session_handle import SessionHandle
from ..session_store import SessionStore
from ..settings import Settings
from ..uploads import Upload


def run_options(upload: Upload) -> tuple[dict[str, int], int]:
    """The dims and seed of random inputs, from the form fields."""
    try:
        dims = json.loads(upload.fields.get("dims") or "{}")
        seed = int(upload.fields.get("seed") or "0")
    except (ValueError, json.JSONDecodeError):
        raise Invalid("bad_field", "'dims' must be a JSON object of dim name to size, 'seed' an integer") \
            from None
    if not isinstance(dims, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1 << 31
                                             for v in dims.values()):
        raise Invalid("bad_field", "'dims' must map dim names to positive integers, e.g. {\"batch\": 1}")
    if not 0 <= seed <= MAX_SEED:
        raise Invalid("bad_field", f"'seed' must be an integer from 0 to {MAX_SEED}, not {seed}")
    return dims, seed


def _inputs_for(handle: SessionHandle, upload: Upload, settings: Settings) -> dict[str, np.ndarray]:
    file = upload.file("inputs")
    if file is not None:
        return read_npz(file.path, settings.max_run_elements, settings.max_tensor_upload_bytes)
    dims, seed = run_options(upload)
    return random_inputs(handle.doc, dims, seed, settings.max_run_elements)


def run_session(store: SessionStore, session_id: str, upload: Upload, staging: Path, settings: Settings
                ) -> dict[str, np.ndarray]:
    """The current model's outputs on the upload's inputs; the model is exported into `staging`."""
    with store.open(session_id) as handle:
        inputs = _inputs_for(handle, upload, settings)
        model = handle.export_to(staging / "model")
    return run_model(model, inputs)


def compare_session(store: SessionStore, session_id: str, upload: Upload, staging: Path, settings: Settings
                    ) -> dict[str, Any]:
    """The original upload and the current model run on the same inputs, their outputs compared."""
    with store.open(session_id) as handle:
        inputs = _inputs_for(handle, upload, settings)
        model = handle.export_to(staging / "model")
        original = handle.original_model()
    before = run_model(original, inputs)
    after = run_model(model, inputs)
    report = compare(before, after)
    report["inputs"] = {n: {"dtype": str(a.dtype), "shape": list(a.shape)} for n, a in inputs.items()}
    return report
