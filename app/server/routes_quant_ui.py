"""Routes the editor's quantization panels need beyond the quantization service, all derived from
the session's model: a weight's histogram and per-channel ranges (the outlier channels a per-tensor
scale must cover), for initializers and for weights held by Constant nodes alike.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from ..graph.io import read_tensor
from .errors import Invalid, TooLarge
from .routes_sessions import weight_of

router = APIRouter(prefix="/api/sessions", tags=["editor"])

MAX_CHANNELS = 4096
HISTOGRAM_BINS = 80


def _weight_values(handle: Any, name: str) -> np.ndarray:
    """An initializer's values, or a Constant node's (many exported models keep their weights so)."""
    tensor = weight_of(handle.doc, name)
    try:
        return read_tensor(tensor, handle.doc.base_dir)
    except Exception as err:  # strings, packed types, unreadable external data
        raise Invalid("no_values", f"cannot read '{name}': {err}", {"tensor": name}) from None


def _weight_view(request: Request, session_id: str, name: str, axis: int) -> dict[str, Any]:
    with request.app.state.store.open(session_id) as handle:
        version = handle.doc.version
        values = _weight_values(handle, name)
    if values.dtype.kind not in "fiu" or values.size == 0:
        raise Invalid("no_values", f"'{name}' holds no numbers ({values.dtype})", {"tensor": name})
    if values.ndim == 0 or not -values.ndim <= axis < values.ndim:
        raise Invalid("bad_axis", f"axis {axis} does not exist in '{name}' of rank {values.ndim}",
                       {"tensor": name, "axis": axis, "rank": values.ndim})
    axis %= values.ndim
    if values.shape[axis] > MAX_CHANNELS:
        raise TooLarge("too_many_channels", f"'{name}' has {values.shape[axis]} channels on axis {axis} "
                       f"(at most {MAX_CHANNELS} are drawn)", {"tensor": name, "axis": axis})
    rows = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1).astype(np.float64)
    finite = np.isfinite(rows)
    lo = np.where(finite, rows, np.inf).min(axis=1)
    hi = np.where(finite, rows, -np.inf).max(axis=1)
    empty = ~finite.any(axis=1)
    data = rows[finite]
    counts, edges = np.histogram(data, bins=HISTOGRAM_BINS) if data.size else (np.zeros(0, np.int64), np.zeros(0))
    return {"version": version, "tensor": name, "axis": axis, "shape": list(values.shape),
            "min": [None if e else float(v) for v, e in zip(lo, empty)],
            "max": [None if e else float(v) for v, e in zip(hi, empty)],
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()}}


@router.get("/{session_id}/weight-view/{name:path}",
            summary="A weight's histogram and per-channel min/max along an axis (initializer or Constant node)")
async def weight_view(session_id: str, name: str, request: Request,
                          axis: int = Query(0, description="the channel axis (negative counts from the end)")) -> Any:
    return await run_in_threadpool(_weight_view, request, session_id, name, axis)
