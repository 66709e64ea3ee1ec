"""The statistics pass: one streaming run of onnxruntime over the calibration data.

Every quantization point becomes an output of an in-memory copy of the model; each
batch's outputs are read zero-copy (OrtValue -> numpy view) and folded into a histogram
and a small uniform sample per tensor by worker threads while ORT runs the next batch.
At most two batches of activations are alive, whatever the number of samples: the loop
itself drops a batch's buffers once its workers are done, before ORT runs the next batch
(see ``collect_statistics``).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from onnx import ModelProto, TensorProto, helper

from app.quant.calibration import CalibrationData
from app.quant.evaluate import Reference
from app.quant.histogram import DEFAULT_CAPACITY, Histogram
from app.quant.model import ActivationTensor
from app.quant.progress import CancelCheck, ProgressCallback, check_cancel, report
from app.quant.runtime import run, serialize, session


@dataclass
class TensorStatistics:
    """What the pass learned about one tensor."""

    tensor: ActivationTensor
    histogram: Histogram
    sample: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    seen: int = 0

    def add_sample(self, values: np.ndarray, size: int, rng: np.random.Generator) -> None:
        """Keep ``size`` values drawn uniformly (with replacement) from all values seen.

        Each slot takes a value of the new batch with probability batch/(seen+batch).
        """
        flat = values.reshape(-1)
        if flat.size == 0:
            return
        fresh = flat[rng.integers(0, flat.size, size)].astype(np.float32)
        if self.seen == 0:
            self.sample = fresh
        else:
            take = rng.random(size) < flat.size / (self.seen + flat.size)
            self.sample[take] = fresh[take]
        self.seen += flat.size


def augmented_model(model: ModelProto, names: list[str], payload: bytes | None = None) -> bytes:
    """The serialized model (``payload``, if the caller has it) with the given tensors added as outputs.

    Appending a serialized ModelProto that holds only the new outputs is protobuf's merge:
    repeated fields concatenate, so a 100 MB model is neither copied nor serialized again.
    """
    existing = {o.name for o in model.graph.output}
    extra = ModelProto()
    for name in names:
        if name not in existing:
            extra.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return (payload if payload is not None else serialize(model)) + extra.SerializeToString()


#: Histogram workers: the binning kernel releases the GIL, so two workers bin two shares at once
#: while onnxruntime runs the next batch.
WORKERS = 2


def _balanced(stats: dict[str, TensorStatistics], arrays: dict[str, np.ndarray]) -> list[list[str]]:
    """The tensors split into WORKERS shares of about equal size (largest first to the lightest)."""
    parts: list[list[str]] = [[] for _ in range(WORKERS)]
    loads = [0] * WORKERS
    for name in sorted(stats, key=lambda n: -arrays[n].size):
        k = loads.index(min(loads))
        parts[k].append(name)
        loads[k] += arrays[name].size
    return [p for p in parts if p]


@dataclass
class _Binning:
    """Folds each batch into the statistics, one share of the tensors per worker."""

    stats: dict[str, TensorStatistics]
    rngs: dict[str, np.random.Generator]  # one per tensor: the samples do not depend on which worker took it
    sample_size: int
    parts: list[list[str]] = field(default_factory=list)

    def update(self, part: int, held: dict) -> None:
        """Fold one share of the tensors into their statistics.

        ``held`` holds the batch's arrays and ORT's OrtValues (which own the buffers the arrays view);
        the loop empties it once every share is done. Passing the arrays themselves would leave them
        alive until the worker thread gets round to dropping its finished work item, which may be
        after ORT has allocated the next batch: one batch of PP-OCRv4 activations at 640x640 is
        0.63 GB, and on a loaded machine that third batch made peak RSS grow with the sample count.
        """
        arrays = held["arrays"]
        for name in self.parts[part]:
            self.stats[name].histogram.add(arrays[name])
            self.stats[name].add_sample(arrays[name], self.sample_size, self.rngs[name])


def collect_statistics(
    model: ModelProto,
    points: list[ActivationTensor],
    data: CalibrationData,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    capacity: int = DEFAULT_CAPACITY,
    sample_size: int = 4096,
    seed: int = 0,
    payload: bytes | None = None,
    folder: Path | None = None,
    record: Reference | None = None,
    level: str = "basic",
) -> dict[str, TensorStatistics]:
    """Histogram, exact min/max and a value sample of every quantization point (``payload``: the
    model already serialized; ``folder``: where its external data lies). ``record`` keeps each batch and
    the model's outputs, so that the end-to-end phase need not run the float model again. ``level``:
    onnxruntime's optimization level of the run (``Toolkit.statistics_level``)."""
    inputs = {s.name for s in data.specs}
    fetched = [p.name for p in points if p.name not in inputs]
    if record is not None:
        fetched += [name for name in record.outputs if name not in fetched]
    # no CPU arena: each batch's outputs outlive the run while the workers bin them (ppocrv4_det 640x640,
    # 128 samples: peak RSS 1.41 GB without, 1.49 GB with the arena, same time)
    sess = session(augmented_model(model, fetched, payload), level, arena=False, folder=folder)
    stats = {p.name: TensorStatistics(p, Histogram(capacity)) for p in points}
    binning = _Binning(stats, {p.name: np.random.default_rng([seed, k]) for k, p in enumerate(points)}, sample_size)
    report(progress, 0, data.num_samples, "statistics")
    done = _fold_batches(sess, fetched, inputs, data, binning, progress, cancel, record)
    report(progress, done, data.num_samples, "statistics")
    return stats


def _fold_batches(
    sess: Any,
    fetched: list[str],
    inputs: set[str],
    data: CalibrationData,
    binning: _Binning,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
    record: Reference | None,
) -> int:
    """Run every batch and fold it into the statistics while onnxruntime runs the next; the samples run.

    At most two batches are alive: the one the workers fold, and the one onnxruntime has just made.
    """
    total = data.num_samples
    done = 0
    pending: list[Future] = []
    previous: dict = {}  # the batch the workers are folding (or have just folded)
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="quant-stats") as workers:
        try:
            for batch in data.batches():
                check_cancel(cancel)
                values = run(sess, fetched, batch)
                arrays = dict(zip(fetched, (v.numpy() for v in values), strict=True))
                arrays.update({name: batch[name] for name in inputs if name in binning.stats})
                if record is not None:  # copies: the arrays view buffers that go with the batch
                    record.keep(batch, [np.array(arrays[name]) for name in record.outputs])
                if not binning.parts:
                    binning.parts[:] = _balanced(binning.stats, arrays)
                current = {"arrays": arrays, "values": values}
                del arrays, values  # from here on only ``current`` (and a running update) reaches them
                for future in pending:
                    future.result()
                previous.clear()  # the finished batch's buffers go now, not when a worker drops its task
                if pending:
                    report(progress, done, total, "statistics")
                pending = [workers.submit(binning.update, part, current) for part in range(len(binning.parts))]
                previous, current = current, {}
                done += next(iter(batch.values())).shape[0]
            for future in pending:
                future.result()
            previous.clear()
        finally:
            for future in pending:
                future.cancel()
            for future in pending:
                try:
                    future.result()
                except BaseException:  # the original error is already propagating
                    pass
            previous.clear()
    return done
