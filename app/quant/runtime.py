"""onnxruntime sessions built from in-memory models."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import onnxruntime as ort
from onnx import ModelProto

from app.quant.errors import QuantError


T = TypeVar("T")
R = TypeVar("R")

#: Runs the analysis makes side by side: one per core, each session on one thread (``session(lanes=True)``).
#: onnxruntime spreads one run's ops over the cores poorly on these models (its DequantizeLinear and the
#: small elementwise ops stay on one core), so whole runs side by side take 15-25 % less time than the same
#: runs one after the other on all cores (PP-OCRv4 det and PicoDet, bench/quant.py).
LANES = max(1, len(os.sched_getaffinity(0)))

#: Optimization level of the sessions that run QDQ models (see ``session``).
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
QDQ_DISABLED = ("ConvAddFusion", "ConvMulFusion", "ConvBNFusion", "MatmulBNFusion", "DivMulFusion", "GemmSumFusion",
                "MatMulAddFusion", "MatMulScaleFusion", "GeluFusion", "LayerNormFusion", "SimplifiedLayerNormFusion",
                "SkipLayerNormFusion", "BiasGeluFusion", "FastGeluFusion", "QuickGeluFusion", "BiasSoftmaxFusion",
                "AttentionFusion", "EmbedLayerNormFusion")


def serialize(model: ModelProto) -> bytes:
    """The model as bytes for onnxruntime, or a QuantError when it is over protobuf's 2 GB."""
    try:
        return model.SerializeToString()
    except ValueError as exc:
        raise QuantError(f"model too large to analyse in memory (protobuf limit 2 GB): {exc}") from exc


def session(model: ModelProto | bytes, level: str = "all", arena: bool = True,
            folder: Path | None = None, lanes: bool = False) -> ort.InferenceSession:
    """CPU session from the model or its serialized bytes (nothing written to disk).

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
    handed over hold only the graph).
    ``lanes``: the session runs beside others (``in_lanes``), on one thread.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = LEVELS[level]
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = arena
    if lanes and LANES > 1:
        options.intra_op_num_threads = 1
    for key, value in (QDQ_CONFIG if level == QDQ_LEVEL else {}).items():
        options.add_session_config_entry(key, value)
    if folder is not None:
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(folder))
    payload = model if isinstance(model, bytes) else serialize(model)
    try:
        return ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=list(QDQ_DISABLED) if level == QDQ_LEVEL else None)
    except Exception as exc:  # ORT raises Fail, InvalidGraph, NotImplemented, ...
        raise QuantError(f"onnxruntime cannot load the model: {exc}") from exc


def run(sess: ort.InferenceSession, outputs: list[str] | None, feeds: dict[str, np.ndarray]) -> list:
    """Run, turning ORT's errors about the inputs into a QuantError."""
    try:
        return sess.run_with_ort_values(outputs, {k: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(v))
                                                  for k, v in feeds.items()})
    except Exception as exc:
        raise QuantError(f"onnxruntime failed on the calibration data: {exc}") from exc


def in_lanes(work: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """``work`` of each item, ``LANES`` at a time, results in the items' order; an item is taken only when a
    lane is free, so a long data set is never read ahead. ``work`` should use ``session(lanes=True)``
    sessions; an exception in one item is raised here once the items before it are yielded."""
    if LANES == 1:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(LANES) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) == LANES:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
