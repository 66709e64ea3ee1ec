"""A session's weights as .npy files: read one out (header first, so the data can follow in chunks) and
replace one from an uploaded .npy, as an undoable edit."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np

from ...graph.io import read_tensor
from ...runtime.npy import check_size, read_header
from ..session_store import SessionStore
from .sessions import apply_edits
from .weights import weight_of


def tensor_npy(store: SessionStore, session_id: str, tensor_name: str) -> tuple[bytes, np.ndarray]:
    """A weight as the header of its .npy and its data as flat bytes (uint8)."""
    with store.open(session_id) as handle:
        array = read_tensor(weight_of(handle.doc, tensor_name), handle.doc.base_dir)
    if array.dtype == object:  # string tensors: fixed-width unicode is what .npy holds without pickles
        array = (
            np.vectorize(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v), otypes=[str])(
                array
            )
            if array.size
            else array.astype(str)
        )
    header = _npy_header(array)
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8) if array.size else np.zeros(0, np.uint8)
    return header, flat


def _npy_header(array: np.ndarray) -> bytes:
    """The .npy header of a C-ordered array, so the data can follow in chunks."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, np.lib.format.header_data_from_array_1_0(np.ascontiguousarray(array)))
    return out.getvalue()


def replace_tensor(
    store: SessionStore, session_id: str, tensor_name: str, path: Path, expected_version: int | None, max_elements: int
) -> dict[str, Any]:
    """Replace a weight by the .npy at `path` (same dtype and shape), applied and logged like any edit."""
    with open(path, "rb") as f:
        check_size(read_header(f), path.stat().st_size - f.tell(), max_elements, f"tensor '{tensor_name}'")
    with store.open(session_id) as handle:
        weight_of(handle.doc, tensor_name)
        edit = {
            "op": "set_initializer",
            "name": tensor_name,
            "npy_base64": base64.b64encode(path.read_bytes()).decode("ascii"),
        }
        return apply_edits(handle, [edit], expected_version)
