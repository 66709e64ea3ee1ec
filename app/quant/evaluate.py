"""End-to-end error: quantized models against the float model, streamed over the data."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import onnxruntime as ort
from onnx import ModelProto, TensorProto

from app.quant.calibration import Batch
from app.quant.progress import CancelCheck, ProgressCallback, check_cancel, report
from app.quant.runtime import run
from app.runtime.compare import OutputError
from app.runtime.session import in_lanes


def float_outputs(sess: ort.InferenceSession) -> list[str]:
    """Names of the model outputs that are float tensors (the ones that can be compared)."""
    return [o.name for o in sess.get_outputs() if o.type == "tensor(float)"]


def float_output_names(model: ModelProto) -> list[str]:
    """``float_outputs`` of a model not loaded in onnxruntime."""
    return [o.name for o in model.graph.output if o.type.tensor_type.elem_type == TensorProto.FLOAT]


class Reference:
    """The float model's outputs on a few batches, computed once: a search measures many candidates on
    the same samples, and running the float model again for each would cost as much as the candidate."""

    def __init__(self, outputs: list[str], limit: int | None = None) -> None:
        self.outputs = outputs
        self.batches: list[Batch] = []
        self.expected: list[list[np.ndarray]] = []
        self.samples = self.held = 0
        #: bytes of batches and outputs it may hold (None: no bound); beyond, it holds nothing
        self.limit = limit
        self.complete = True

    @classmethod
    def measured(cls, reference: ort.InferenceSession, batches: Iterable[Batch], limit: int | None = None) -> Reference:
        """The float model ``reference`` run on ``batches``, its outputs kept."""
        kept = cls(float_outputs(reference), limit)
        for batch in batches:
            kept.keep(batch, [v.numpy() for v in run(reference, kept.outputs, batch)])
        return kept

    def keep(self, batch: Batch, expected: list[np.ndarray]) -> None:
        """Hold one more batch and its outputs, or drop everything once they pass ``limit``."""
        if not self.complete:
            return
        self.batches.append(batch)
        self.expected.append(expected)
        self.samples += next(iter(batch.values())).shape[0]
        self.held += sum(a.nbytes for a in batch.values()) + sum(a.nbytes for a in expected)
        if self.limit is not None and self.held > self.limit:
            self.batches, self.expected, self.samples, self.held, self.complete = [], [], 0, 0, False

    def split(self, samples: int) -> tuple[Reference, Reference]:
        """The first batches holding at least ``samples`` samples (all it holds if fewer), and the rest, each
        with their outputs."""
        parts = (self._empty(), self._empty())
        for batch, expected in zip(self.batches, self.expected, strict=True):
            parts[parts[0].samples >= samples].keep(batch, expected)
        return parts

    def _empty(self) -> Reference:
        return Reference(self.outputs)


def compare_batches(
    reference: ort.InferenceSession | Reference,
    candidates: dict[str, ort.InferenceSession],
    batches: Iterable[Batch],
    total: int,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    phase: str = "end_to_end",
    record: Reference | None = None,
) -> dict[str, list[dict[str, OutputError]]]:
    """Per candidate, per batch, per float output: error sums against the reference (its kept outputs
    when it is a ``Reference``, whose batches are then the ones measured). ``record`` keeps the batches
    and the reference's outputs for later measurements. Batches run side by side (``in_lanes``): sessions
    made with ``lanes=True`` use the cores best."""
    kept = reference if isinstance(reference, Reference) else None
    outputs = kept.outputs if kept is not None else float_outputs(reference)

    def measure(item: tuple[int, Batch]) -> tuple[Batch, list[np.ndarray], dict[str, dict[str, OutputError]]]:
        index, batch = item
        check_cancel(cancel)
        expected = kept.expected[index] if kept is not None else [v.numpy() for v in run(reference, outputs, batch)]
        measured = {}
        for label, sess in candidates.items():
            measured[label] = {name: OutputError() for name in outputs}
            for name, x, y in zip(outputs, expected, run(sess, outputs, batch), strict=True):
                measured[label][name].add(x, y.numpy())
        return batch, expected, measured

    errors: dict[str, list[dict[str, OutputError]]] = {label: [] for label in candidates}
    done = 0
    report(progress, 0, total, phase)
    for batch, expected, measured in in_lanes(measure, enumerate(kept.batches if kept is not None else batches)):
        if record is not None:
            record.keep(batch, expected)
        for label, batch_errors in measured.items():
            errors[label].append(batch_errors)
        done += next(iter(batch.values())).shape[0]
        report(progress, done, total, phase)
    return errors


def summed(per_batch: list[dict[str, OutputError]], first: int | None = None) -> dict[str, OutputError]:
    """Per output, the error over all batches (or the first ``first``)."""
    chosen = per_batch[:first] if first is not None else per_batch
    return {name: sum((b[name] for b in chosen), OutputError()) for name in (chosen[0] if chosen else {})}


def compare(
    reference: ort.InferenceSession | Reference,
    candidates: dict[str, ort.InferenceSession],
    batches: Iterable[Batch],
    total: int,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    phase: str = "end_to_end",
) -> dict[str, dict[str, OutputError]]:
    """Per candidate, per float output: error sums against the reference over all batches."""
    per_batch = compare_batches(reference, candidates, batches, total, progress, cancel, phase)
    return {label: summed(errors) for label, errors in per_batch.items()}


def worst_sqnr(errors: dict[str, OutputError]) -> float:
    """The lowest output SQNR (dB); -inf if any output is undefined."""
    values = [e.sqnr_db for e in errors.values()]
    return min((v if v is not None else -math.inf) for v in values) if values else math.inf
