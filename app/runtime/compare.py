"""The error between two runs' outputs: running sums for SQNR and cosine, and the per-output report.

``OutputError`` is the one arithmetic: the analysis adds every sample of every quantization point to one
(float32 products, float64 sums); ``compare_outputs`` reports two runs of a model on the same inputs
(float64 throughout, for integer outputs too) the way the server's compare answers it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


def sqnr_db(signal: float, noise: float) -> float | None:
    """10*log10(signal/noise); None where undefined (silent tensor or no error at all)."""
    if signal <= 0 or noise <= 0:
        return None
    return 10.0 * math.log10(signal / noise)


@dataclass
class OutputError:
    """Running sums for one output: enough for SQNR and cosine over all samples."""

    signal: float = 0.0
    noise: float = 0.0
    dot: float = 0.0
    candidate: float = 0.0

    def add(self, reference: np.ndarray, candidate: np.ndarray, dtype: type = np.float32) -> None:
        """Products in ``dtype`` (float32: each exact to 6e-8), sums in float64: no float64 copies of the
        tensors, which cost more than the quantized run itself on a model's every point."""
        x: np.ndarray = np.asarray(reference, dtype=dtype).reshape(-1)
        y: np.ndarray = np.asarray(candidate, dtype=dtype).reshape(-1)
        d = x - y
        self.signal += float(np.add.reduce(x * x, dtype=np.float64))
        self.noise += float(np.add.reduce(np.multiply(d, d, out=d), dtype=np.float64))
        self.dot += float(np.add.reduce(x * y, dtype=np.float64))
        self.candidate += float(np.add.reduce(y * y, dtype=np.float64))

    @property
    def sqnr_db(self) -> float | None:
        if self.signal > 0 and self.noise == 0:
            return math.inf
        return sqnr_db(self.signal, self.noise)

    @property
    def cosine(self) -> float | None:
        norm = math.sqrt(self.signal * self.candidate)
        return self.dot / norm if norm > 0 else None

    def __add__(self, other: OutputError) -> OutputError:
        return OutputError(
            self.signal + other.signal, self.noise + other.noise, self.dot + other.dot, self.candidate + other.candidate
        )

    def to_json(self) -> dict:
        value = self.sqnr_db
        return {"sqnr_db": None if value is None or math.isinf(value) else value, "cosine": self.cosine}


def compare_outputs(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per output: max abs difference and cosine similarity (numbers), or plain equality (strings and
    JSON text of sequences and maps); outputs only one side has are listed."""
    outputs = []
    for name in before:
        if name not in after:
            continue
        a, b = before[name], after[name]
        entry: dict[str, Any] = {
            "name": name,
            "shape_before": list(a.shape),
            "shape_after": list(b.shape),
            "dtype_before": str(a.dtype),
            "dtype_after": str(b.dtype),
        }
        if a.shape != b.shape or a.dtype.kind not in "fiub" or b.dtype.kind not in "fiub":
            entry.update(max_abs_diff=None, cosine=None, equal=a.shape == b.shape and bool(np.array_equal(a, b)))
        else:
            entry.update(_numeric(a, b), equal=bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f")))
        outputs.append(entry)
    return {
        "outputs": outputs,
        "only_before": [n for n in before if n not in after],
        "only_after": [n for n in after if n not in before],
        "all_equal": all(o["equal"] for o in outputs) and not (set(before) ^ set(after)),
    }


def _numeric(a: np.ndarray, b: np.ndarray) -> dict[str, float | None]:
    """Max abs difference and cosine of two numeric arrays of one shape, in float64; a cosine of all-zero
    outputs is 1 (equal), of an all-zero and another 0, and what is not finite is None."""
    x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    error = OutputError()
    error.add(x, y, np.float64)
    cosine = error.cosine
    if cosine is None:
        cosine = 1.0 if not x.any() and not y.any() else 0.0
    return {"max_abs_diff": _finite(np.abs(x - y).max()) if x.size else 0.0, "cosine": _finite(cosine)}


def _finite(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
