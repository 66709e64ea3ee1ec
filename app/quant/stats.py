"""The statistics pass: one streaming run of onnxruntime over the calibration data.

Every quantization point becomes an output of an in-memory copy of the model; each
batch's outputs are read zero-copy (OrtValue -> numpy view) and folded into a histogram
and a small uniform sample per tensor by a worker thread while ORT runs the next batch.
At most two batches of activations are alive, whatever the number of samples.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from onnx import ModelProto, TensorProto, helper

from app.quant.calibration import Batch, CalibrationData
from app.quant.histogram import DEFAULT_CAPACITY, Histogram, Scratch
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


def collect_statistics(model: ModelProto, points: list[ActivationTensor], data: CalibrationData,
                       progress: ProgressCallback | None = None, cancel: CancelCheck | None = None,
                       capacity: int = DEFAULT_CAPACITY, sample_size: int = 4096,
                       seed: int = 0, payload: bytes | None = None) -> dict[str, TensorStatistics]:
    """Histogram, exact min/max and a value sample of every quantization point (``payload``: the
    model already serialized)."""
    inputs = {s.name for s in data.specs}
    fetched = [p.name for p in points if p.name not in inputs]
    sess = session(augmented_model(model, fetched, payload), "basic")
    stats = {p.name: TensorStatistics(p, Histogram(capacity)) for p in points}
    rng = np.random.default_rng(seed)
    scratch = Scratch()

    def update(batch: Batch, values: list) -> None:
        arrays = dict(zip(fetched, (v.numpy() for v in values)))
        arrays.update({name: batch[name] for name in inputs if name in stats})
        for name, st in stats.items():
            st.histogram.add(arrays[name], scratch)
            st.add_sample(arrays[name], sample_size, rng)

    total = data.num_samples
    done = 0
    report(progress, 0, total, "statistics")
    pending: Future | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="quant-stats") as worker:
        try:
            for batch in data.batches():
                check_cancel(cancel)
                values = run(sess, fetched, batch)
                if pending is not None:
                    pending.result()
                    report(progress, done, total, "statistics")
                pending = worker.submit(update, batch, values)
                done += next(iter(batch.values())).shape[0]
            if pending is not None:
                pending.result()
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                try:
                    pending.result()
                except Exception:  # the original error is already propagating
                    pass
    report(progress, done, total, "statistics")
    return stats
