"""onnxruntime sessions: the one factory, running with errors translated, and runs side by side.

Every session of the code base is made by ``open_session``: the graph engine's one-node checks and
constant folding, the analysis' statistics and QDQ runs, the server's runs of a whole model. onnxruntime's
exceptions (it raises Fail, InvalidGraph, NotImplemented, RuntimeError...) come out as ``LoadFailed``,
``RunFailed`` or ``BadInputs`` with onnxruntime's first line as the message and the exception as cause.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import onnxruntime as ort
from onnx import ModelProto

from app.graph.errors import first_line
from app.runtime.errors import BadInputs, LoadFailed, RunFailed, TooBig

T = TypeVar("T")
R = TypeVar("R")

#: Runs the analysis makes side by side: one per core, each session on one thread (``session(lanes=True)``).
#: onnxruntime spreads one run's ops over the cores poorly on these models (its DequantizeLinear and the
#: small elementwise ops stay on one core), so whole runs side by side take 15-25 % less time than the same
#: runs one after the other on all cores (PP-OCRv4 det and PicoDet, bench/quant.py).
LANES = max(1, len(os.sched_getaffinity(0)))

#: Optimization level of the sessions that run QDQ models (see ``open_session``).
QDQ_LEVEL = "qdq"

LEVELS = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    QDQ_LEVEL: ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
}

#: Session config of QDQ_LEVEL: no QDQ fusion into integer kernels (it also turns a float Conv bias into a
#: wrapping int32), no merging of back-to-back Q/DQ pairs.
QDQ_CONFIG = {"session.disable_quant_qdq": "1", "session.disable_double_qdq_remover": "1"}

#: Optimizers QDQ_LEVEL leaves out because they compute the same formula with different float rounding
#: (constants folded into weights, a fused kernel in place of the ops); one flipped rounding in a quantizer
#: before them and the QDQ model's outputs are no longer what its graph says.
QDQ_DISABLED = (
    "ConvAddFusion",
    "ConvMulFusion",
    "ConvBNFusion",
    "MatmulBNFusion",
    "DivMulFusion",
    "GemmSumFusion",
    "MatMulAddFusion",
    "MatMulScaleFusion",
    "GeluFusion",
    "LayerNormFusion",
    "SimplifiedLayerNormFusion",
    "SkipLayerNormFusion",
    "BiasGeluFusion",
    "FastGeluFusion",
    "QuickGeluFusion",
    "BiasSoftmaxFusion",
    "AttentionFusion",
    "EmbedLayerNormFusion",
)

#: onnxruntime's names of the element types numpy arrays are checked against before a run.
ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}


def serialize(model: ModelProto) -> bytes:
    """The model as bytes for onnxruntime, or TooBig when it is over protobuf's 2 GB."""
    try:
        return model.SerializeToString()
    except ValueError as exc:
        raise TooBig(
            "too_large", f"model too large to analyse in memory (protobuf limit 2 GB): {exc}", cause=exc
        ) from exc


def _options(level: str, arena: bool, folder: Path | None, threads: int | None, log_level: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = LEVELS[level]
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = log_level
    options.enable_cpu_mem_arena = arena
    if threads is not None:
        options.intra_op_num_threads = threads
    for key, value in (QDQ_CONFIG if level == QDQ_LEVEL else {}).items():
        options.add_session_config_entry(key, value)
    if folder is not None:
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(folder))
    return options


def open_session(
    model: ModelProto | bytes | Path,
    level: str = "all",
    arena: bool = True,
    folder: Path | None = None,
    lanes: bool = False,
    threads: int | None = None,
    log_level: int = 3,
) -> ort.InferenceSession:
    """CPU session from a model, its serialized bytes (nothing written to disk) or its file.

    Spinning is off: the statistics worker shares the cores with ORT's threads.
    QDQ models run at QDQ_LEVEL: onnxruntime's extended optimizations (the weights' DequantizeLinear
    folded once, activations fused into their Conv, a Relu or Clip dropped where its quantizer clamps
    the same) without any that changes the numbers: QDQ fusion into integer kernels (onnxruntime 1.32
    turns a float Conv bias into int32 at scale input_scale * weight_scale and silently wraps one beyond
    int32, which an int16 activation's tiny scale makes easy), constants folded into weights
    (QDQ_DISABLED) and level "all"'s NCHWc convolutions (another summation order: a few quantizers round
    the other way and the difference grows through the layers). The outputs are bit for bit level
    "none"'s; tests/quant/test_qdq_runtime.py pins that.
    ``arena`` False: tensors come from malloc instead of ORT's CPU arena, which never gives memory
    back and, when output buffers are held across runs (the statistics pass), can fragment and grow.
    ``folder``: where the model's external data lies (onnxruntime reads it from there; the bytes
    handed over hold only the graph; a file's own folder needs no telling).
    ``lanes``: the session runs beside others (``in_lanes``), on one thread; ``threads`` sets the count.
    ``log_level``: onnxruntime's severity from which it logs (3 errors, 4 fatal only).
    """
    if lanes and LANES > 1:
        threads = 1
    options = _options(level, arena, folder, threads, log_level)
    payload = str(model) if isinstance(model, Path) else model if isinstance(model, bytes) else serialize(model)
    try:
        return ort.InferenceSession(
            payload,
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(QDQ_DISABLED) if level == QDQ_LEVEL else None,
        )
    except Exception as exc:  # ORT raises Fail, InvalidGraph, NotImplemented, ...
        raise LoadFailed(
            "model_not_runnable", f"onnxruntime cannot load the model: {first_line(exc)[:500]}", cause=exc
        ) from exc


def run(sess: ort.InferenceSession, outputs: list[str] | None, feeds: dict[str, np.ndarray]) -> list:
    """The outputs as numpy arrays (or the sequences and maps onnxruntime gives); RunFailed on an error."""
    try:
        return sess.run(outputs, feeds)
    except Exception as exc:
        raise _run_failed(exc) from exc


def run_values(sess: ort.InferenceSession, outputs: list[str] | None, feeds: dict[str, np.ndarray]) -> list:
    """The outputs as OrtValues (no copy into numpy until asked); RunFailed on an error."""
    try:
        return sess.run_with_ort_values(
            outputs, {k: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()}
        )
    except Exception as exc:
        raise _run_failed(exc) from exc


def _run_failed(exc: Exception) -> RunFailed:
    return RunFailed("run_failed", f"onnxruntime failed on these inputs: {first_line(exc)[:500]}", cause=exc)


def checked_feeds(sess: ort.InferenceSession, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs, contiguous, once their names and element types are the session's (BadInputs if not),
    so that a client learns which input is wrong instead of onnxruntime's text."""
    expected = {i.name: i for i in sess.get_inputs()}
    unknown = sorted(set(inputs) - set(expected))
    missing = sorted(set(expected) - set(inputs))
    if unknown or missing:
        raise BadInputs(
            "bad_inputs",
            "inputs do not match the model: "
            + "; ".join(
                p for p in (f"unknown {unknown}" if unknown else "", f"missing {missing}" if missing else "") if p
            ),
            {"unknown": unknown, "missing": missing},
        )
    feed = {}
    for name, value in inputs.items():
        want = ORT_TYPES.get(expected[name].type)
        if want is not None and value.dtype != want:
            raise BadInputs(
                "wrong_dtype",
                f"input '{name}' must be {np.dtype(want)}, not {value.dtype}",
                {"input": name, "expected": str(np.dtype(want))},
            )
        feed[name] = np.ascontiguousarray(value)
    return feed


#: Marks the threads running a lane's work.
_lane = threading.local()


def in_lanes(work: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """``work`` of each item, ``LANES`` at a time, results in the items' order; an item is taken only when a
    lane is free, so a long data set is never read ahead. ``work`` should use ``open_session(lanes=True)``
    sessions; an exception in one item is raised here once the items before it are yielded. Inside a lane
    (work that itself runs items in lanes) the items run one after the other: the lanes are taken. A single
    item runs in the caller's thread without taking them, so that its own work can run side by side."""
    if LANES == 1 or getattr(_lane, "busy", False) or (isinstance(items, Sized) and len(items) < 2):
        yield from map(work, items)
        return

    def in_lane(item: T) -> R:
        _lane.busy = True
        try:
            return work(item)
        finally:
            _lane.busy = False

    with ThreadPoolExecutor(LANES) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(in_lane, item))
            if len(pending) == LANES:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
