"""A session's weights as the editor shows them: a weight's histogram and its per-channel ranges (the
outlier channels a per-tensor scale must cover), for initializers and for weights held by Constant nodes."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from ...graph import ModelDocument
from ...graph.io import read_tensor
from ...graph.weights import weight_tensor
from ...view.graph_view import initializer_summary
from ..errors import Invalid, NotFound, TooLarge
from ..session_handle import SessionHandle
from ..session_store import SessionStore

HISTOGRAM_BINS = 40
HISTOGRAM_SAMPLE = 1 << 20
MAX_CHANNELS = 4096
CHANNEL_HISTOGRAM_BINS = 80


def weight_of(doc: ModelDocument, name: str) -> TensorProto:
    """A weight named in the URL: an initializer or a Constant node's value (404 when neither)."""
    tensor = weight_tensor(doc.main, name)
    if tensor is None:
        raise NotFound("unknown_tensor", f"no initializer or Constant node output named '{name}'", {"tensor": name})
    return tensor


def _histogram(data: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram`` of finite float64 values, also where their range overflows float64 (max - min beyond
    1.8e308, which numpy refuses): then of the halved values, whose edges doubled back are exact."""
    if data.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    if np.isfinite(float(data.max()) - float(data.min())):
        return np.histogram(data, bins=bins)
    counts, edges = np.histogram(data / 2, bins=bins)
    return counts, edges * 2


def weight_histogram(store: SessionStore, session_id: str, name: str) -> dict[str, Any]:
    """A weight's histogram (40 bins) of at most HISTOGRAM_SAMPLE values, with its size and statistics."""
    with store.open(session_id) as handle:
        tensor = weight_of(handle.doc, name)
        base_dir = handle.doc.base_dir
        version = handle.doc.version
        values = _weight_values(handle, name, "no_histogram", "fiub")
    flat = values.reshape(-1)
    sampled = flat.size > HISTOGRAM_SAMPLE
    if sampled:
        flat = flat[:: flat.size // HISTOGRAM_SAMPLE + 1]
    data = flat.astype(np.float64)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return {"version": version, "counts": [], "edges": [], "sampled": sampled}
    counts, edges = _histogram(data, HISTOGRAM_BINS)
    return {
        "version": version,
        "counts": counts.tolist(),
        "edges": edges.tolist(),
        "sampled": sampled,
        "summary": initializer_summary(tensor, base_dir),
    }


def _weight_values(handle: SessionHandle, name: str, code: str, kinds: str) -> np.ndarray:
    """An initializer's values, or a Constant node's (many exported models keep their weights so); a 400 with
    ``code`` when they cannot be read or are not numbers of the dtype kinds ``kinds``."""
    tensor = weight_of(handle.doc, name)
    try:
        values = read_tensor(tensor, handle.doc.base_dir)
    except Exception as err:  # strings, packed types, unreadable external data
        raise Invalid(code, f"cannot read '{name}': {err}", {"tensor": name}) from None
    if values.dtype.kind not in kinds or values.size == 0:
        raise Invalid(code, f"'{name}' holds no numbers ({values.dtype})", {"tensor": name})
    return values


def weight_view(store: SessionStore, session_id: str, name: str, axis: int) -> dict[str, Any]:
    """A weight's histogram (80 bins) and per-channel min/max along an axis."""
    with store.open(session_id) as handle:
        version = handle.doc.version
        values = _weight_values(handle, name, "no_values", "fiu")
    if values.ndim == 0 or not -values.ndim <= axis < values.ndim:
        raise Invalid(
            "bad_axis",
            f"axis {axis} does not exist in '{name}' of rank {values.ndim}",
            {"tensor": name, "axis": axis, "rank": values.ndim},
        )
    axis %= values.ndim
    if values.shape[axis] > MAX_CHANNELS:
        raise TooLarge(
            "too_many_channels",
            f"'{name}' has {values.shape[axis]} channels on axis {axis} (at most {MAX_CHANNELS} are drawn)",
            {"tensor": name, "axis": axis},
        )
    rows = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1).astype(np.float64)
    finite = np.isfinite(rows)
    lo = np.where(finite, rows, np.inf).min(axis=1)
    hi = np.where(finite, rows, -np.inf).max(axis=1)
    empty = np.logical_not(finite.any(axis=1))
    data = rows[finite]
    counts, edges = _histogram(data, CHANNEL_HISTOGRAM_BINS)
    return {
        "version": version,
        "tensor": name,
        "axis": axis,
        "shape": list(values.shape),
        "min": [None if e else float(v) for v, e in zip(lo, empty, strict=True)],
        "max": [None if e else float(v) for v, e in zip(hi, empty, strict=True)],
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }
