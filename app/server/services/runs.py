"""Running a session's model in onnxruntime on uploaded or random inputs, and comparing it with the
original upload on the same inputs.

Sessions, input checks, .npz reading, random values and the comparison are app.runtime's; its errors reach
the client through the one error handler (app.server.errors). Here: the service's limits and the outputs
made .npz-ready."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ...graph import ModelDocument
from ...graph.guard import element_count
from ...runtime.compare import compare_outputs
from ...runtime.inputs import input_specs, random_inputs
from ...runtime.npy import read_npz
from ...runtime.session import checked_feeds, open_session, run
from ..errors import Invalid, TooLarge
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
        raise Invalid("bad_field", "'dims' must be a JSON object of dim name to size, 'seed' an integer") from None
    if not isinstance(dims, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1 << 31 for v in dims.values()
    ):
        raise Invalid("bad_field", "'dims' must map dim names to positive integers, e.g. {\"batch\": 1}")
    if not 0 <= seed <= MAX_SEED:
        raise Invalid("bad_field", f"'seed' must be an integer from 0 to {MAX_SEED}, not {seed}")
    return dims, seed


def _inputs_for(handle: SessionHandle, upload: Upload, settings: Settings) -> dict[str, np.ndarray]:
    file = upload.file("inputs")
    if file is not None:
        return read_npz(file.path, settings.max_run_elements, settings.max_tensor_upload_bytes)
    dims, seed = run_options(upload)
    return random_model_inputs(handle.doc, dims, seed, settings.max_run_elements)


def run_session(
    store: SessionStore, session_id: str, upload: Upload, staging: Path, settings: Settings
) -> dict[str, np.ndarray]:
    """The current model's outputs on the upload's inputs; the model is exported into `staging`."""
    with store.open(session_id) as handle:
        inputs = _inputs_for(handle, upload, settings)
        model = handle.export_to(staging / "model")
    return run_model(model, inputs)


def compare_session(
    store: SessionStore, session_id: str, upload: Upload, staging: Path, settings: Settings
) -> dict[str, Any]:
    """The original upload and the current model run on the same inputs, their outputs compared."""
    with store.open(session_id) as handle:
        inputs = _inputs_for(handle, upload, settings)
        model = handle.export_to(staging / "model")
        original = handle.original_model()
    before = run_model(original, inputs)
    after = run_model(model, inputs)
    report = compare_outputs(before, after)
    report["inputs"] = {n: {"dtype": str(a.dtype), "shape": list(a.shape)} for n, a in inputs.items()}
    return report


def random_model_inputs(
    doc: ModelDocument, dims: dict[str, int], seed: int, max_elements: int
) -> dict[str, np.ndarray]:
    """Inputs matching the declared shapes; named dims from `dims`, other unknown dims 1 (values: see
    ``app.runtime.inputs.random_value``)."""
    specs = input_specs(doc.model)
    shapes = {}
    for spec in specs:
        if spec.shape is None:
            raise Invalid(
                "unknown_input_shape",
                f"input '{spec.name}' has no declared shape; upload inputs as .npz instead",
                {"input": spec.name},
            )
        shape = [d if isinstance(d, int) else dims.get(d, 1) if isinstance(d, str) else 1 for d in spec.shape]
        count = element_count(shape)  # Python ints: an int64 product of huge dims wraps round to small
        if count > max_elements:
            raise TooLarge(
                "too_large",
                f"input '{spec.name}' of shape {shape} has {count:,} elements; the limit is {max_elements:,}",
                {"input": spec.name, "shape": shape},
            )
        shapes[spec.name] = shape
    return random_inputs(np.random.default_rng(seed), specs, shapes)


def run_model(model: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs by name; errors of the model or of the inputs come back as 422 with onnxruntime's words."""
    session = open_session(model)
    names = [o.name for o in session.get_outputs()]
    values = run(session, names, checked_feeds(session, inputs))
    return {n: _plain(v) for n, v in zip(names, values, strict=True)}


def _plain(value: Any) -> np.ndarray:
    """A tensor output as it is; a sequence or map (e.g. ZipMap's) as its JSON text in a 0-d string array,
    so that .npz files of outputs never need pickles."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value
    if isinstance(value, np.ndarray) and all(isinstance(v, (str, bytes)) for v in value.flat):
        return value.astype(str)
    text = json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o), sort_keys=True)
    return np.array(text)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """The arrays as an uncompressed .npz, one ``<name>.npy`` each, as numpy.savez writes it; savez takes the
    names as keyword arguments, so an output named ``file`` or ``allow_pickle`` would clash with its own."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
