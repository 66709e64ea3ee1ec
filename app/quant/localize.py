"""Where the error is born: at every quantization point, the accumulated error (the whole model
quantized, against the float model, at that point) and the local error (the point's layer alone
quantized: its weights, bias and output, fed the float model's own inputs).

Where the accumulated cosine collapses while the local error there is small, the error was born
upstream and carried; where both drop together, this layer makes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

from app.graph.index import has_subgraphs
from app.quant.calibration import Batch
from app.quant.evaluate import OutputError
from app.quant.histogram import kernel
from app.quant.model import WeightTensor, constant_tensors
from app.quant.progress import CancelCheck, ProgressCallback, check_cancel, report
from app.quant.qdq import BIASED, ActivationQuant, WeightQuant, bias_on_grid, input_grid
from app.quant.runtime import run, session
from app.quant.stats import augmented_model
from app.quant.weights import dequantized
from app.runtime.session import QDQ_LEVEL, in_lanes

#: Suffix of the local copies' tensors.
LOCAL = "/local"


def layer_nodes(model: ModelProto, points: Sequence[str]) -> dict[str, list[int]]:
    """Per point, the indices of the nodes that compute it from the points, graph inputs and constants
    before it: its layer (with any data movement between the layer and the points it reads)."""
    nodes = list(model.graph.node)
    producer = {out: k for k, node in enumerate(nodes) for out in node.output}
    stops = set(points) | {i.name for i in model.graph.input} | constant_tensors(model)
    layers = {}
    for point in points:
        if point not in producer:
            continue
        found, stack = set(), [producer[point]]
        while stack:
            k = stack.pop()
            if k in found:
                continue
            found.add(k)
            stack += [producer[name] for name in nodes[k].input if name not in stops and name in producer]
        if not any(has_subgraphs(nodes[k]) for k in found):
            layers[point] = sorted(found)
    return layers


def local_model(
    model: ModelProto,
    activations: dict[str, ActivationQuant],
    weights: dict[str, tuple[WeightTensor, WeightQuant]],
    weight_values: dict[str, np.ndarray],
    biases: dict[str, np.ndarray],
) -> tuple[ModelProto, list[str]]:
    """The float model, each point an output, and beside it a copy of each point's layer on its toolkit
    weights and bias, reading the float tensors, whose output ``<point>/local`` is an output too (its
    own quantization is applied by the caller). Returns the model and the points that have a copy."""
    out = ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    nodes = list(model.graph.node)
    producers = {name: node for node in nodes for name in node.output}
    layers = layer_nodes(model, list(activations))
    initializers: dict[str, np.ndarray] = {}
    copies: list[NodeProto] = []
    for point, indices in layers.items():
        renamed = {name: f"{name}{LOCAL}/{point}" for k in indices for name in nodes[k].output if name}
        renamed[point] = f"{point}{LOCAL}"
        for k in indices:
            node = NodeProto()
            node.CopyFrom(nodes[k])
            node.name = f"{node.name or node.op_type}{LOCAL}/{point}"
            for i, name in enumerate(node.input):
                if name in renamed:
                    node.input[i] = renamed[name]
                elif name in weights:
                    wq = weights[name][1]
                    node.input[i] = f"{name}{LOCAL}"
                    if node.input[i] not in initializers:
                        initializers[node.input[i]] = dequantized(wq.quantizer, weight_values[name], wq.axis)
                elif i == 2 and node.op_type in BIASED and name in biases and node.input[1] in weights:
                    grid = input_grid(node.input[0], activations, producers)
                    if grid is not None:
                        rounded, _ = bias_on_grid(
                            biases[name], grid, weight_values[node.input[1]], weights[node.input[1]][1]
                        )
                        node.input[i] = f"{name}{LOCAL}/{point}"
                        initializers[node.input[i]] = rounded
            for i, name in enumerate(node.output):
                if name:
                    node.output[i] = renamed[name]
            copies.append(node)
    graph.node.extend(copies)
    graph.initializer.extend(numpy_helper.from_array(v, name) for name, v in initializers.items())
    existing = {o.name for o in graph.output}
    graph.output.extend(
        helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
        for point in layers
        for name in (point, f"{point}{LOCAL}")
        if name not in existing
    )
    return out, list(layers)


def measure(
    model: ModelProto,
    qdq: ModelProto,
    activations: dict[str, ActivationQuant],
    weights: dict[str, tuple[WeightTensor, WeightQuant]],
    weight_values: dict[str, np.ndarray],
    biases: dict[str, np.ndarray],
    batches: Sequence[Batch],
    folder: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> tuple[dict[str, OutputError], dict[str, OutputError], dict[str, OutputError]]:
    """Accumulated and local error of every point over ``batches``, and the error of its activation alone
    (its float value quantized: the local error without the weights'). ``model`` is the float model the
    toolkit quantizes, ``qdq`` its QDQ model with ``activations``, whose points keep their names.

    One batch at a time: every point's float, local and quantized values of a batch are held at once.
    """
    local, points = local_model(model, activations, weights, weight_values, biases)
    inputs = [i.name for i in model.graph.input if i.name in activations]
    float_session = session(local, "all", arena=False, folder=folder, lanes=True)
    del local
    quantized_session = session(augmented_model(qdq, points), QDQ_LEVEL, arena=False, folder=folder, lanes=True)
    accumulated = {p: OutputError() for p in [*inputs, *points]}
    local_errors = {p: OutputError() for p in [*inputs, *points]}
    alone = {p: OutputError() for p in [*inputs, *points]}
    fetched = [*points, *(f"{p}{LOCAL}" for p in points)]
    report(progress, 0, len(batches), "error_map")
    errors = (accumulated, local_errors, alone)
    for done, batch in enumerate(batches, start=1):
        check_cancel(cancel)
        _measure_batch(batch, (float_session, quantized_session), fetched, points, inputs, activations, errors)
        report(progress, done, len(batches), "error_map")
    return accumulated, local_errors, alone


def _measure_batch(
    batch: Batch,
    sessions: tuple[Any, Any],
    fetched: list[str],
    points: list[str],
    inputs: list[str],
    activations: dict[str, ActivationQuant],
    errors: tuple[dict[str, OutputError], dict[str, OutputError], dict[str, OutputError]],
) -> None:
    """One batch added to the accumulated, local and alone errors; its values are freed on return."""
    accumulated, local_errors, alone = errors
    float_session, quantized_session = sessions
    float_run, quantized_run = in_lanes(
        lambda job: run(job[0], job[1], batch), [(float_session, fetched), (quantized_session, points)]
    )
    floats = {name: v.numpy() for name, v in zip(fetched, float_run, strict=True)}
    quantized = dict(zip(points, quantized_run, strict=True))

    def add(point: str) -> None:  # each point's sums belong to one lane; the kernel runs without the GIL
        aq = activations[point]
        scale, zero_point = aq.params
        sums = np.zeros(12)
        _point_sums(
            _flat(floats[point]),
            _flat(floats[f"{point}{LOCAL}"]),
            _flat(quantized[point].numpy()),
            np.float32(scale),
            float(zero_point),
            float(aq.quantizer.qmin),
            float(aq.quantizer.qmax),
            sums,
        )
        for k, errors_of in enumerate((local_errors, alone, accumulated)):
            errors_of[point] += OutputError(*sums[4 * k : 4 * k + 4].tolist())

    for _ in in_lanes(add, points):
        pass
    for name in inputs:  # a graph input's error is its own quantization, alone or not
        aq = activations[name]
        fake = aq.quantizer.fake_quantize(batch[name], *aq.params)
        for errors_of in (local_errors, accumulated, alone):
            errors_of[name].add(batch[name], fake)


def _flat(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float32).reshape(-1)


@kernel(fastmath={"reassoc"})
def _point_sums(
    value: np.ndarray,
    local: np.ndarray,
    quantized: np.ndarray,
    scale: np.float32,
    zero_point: float,
    qmin: float,
    qmax: float,
    sums: np.ndarray,
) -> None:
    """One pass over a point's float, local-copy and quantized values, adding OutputError's four sums
    (signal, noise, dot, candidate) of the local error, of the point's value alone quantized, and of the
    accumulated error to ``sums[0:4]``, ``sums[4:8]`` and ``sums[8:12]``: what fake_quantize and three
    OutputError.add calls compute with ten passes and five temporaries over tensors of up to millions of
    values. The same arithmetic: quantization in float32 (QuantizeLinear's round half to even), products
    in float32, sums in float64."""
    signal = noise_local = dot_local = y2_local = noise_alone = dot_alone = y2_alone = 0.0
    noise_acc = dot_acc = y2_acc = 0.0
    for i in range(value.size):
        x = value[i]
        signal += np.float64(x * x)
        y = np.float32((min(max(np.rint(local[i] / scale) + zero_point, qmin), qmax) - zero_point) * scale)
        d = np.float32(x - y)
        noise_local += np.float64(d * d)
        dot_local += np.float64(x * y)
        y2_local += np.float64(y * y)
        y = np.float32((min(max(np.rint(x / scale) + zero_point, qmin), qmax) - zero_point) * scale)
        d = np.float32(x - y)
        noise_alone += np.float64(d * d)
        dot_alone += np.float64(x * y)
        y2_alone += np.float64(y * y)
        y = quantized[i]
        d = np.float32(x - y)
        noise_acc += np.float64(d * d)
        dot_acc += np.float64(x * y)
        y2_acc += np.float64(y * y)
    sums[:] += np.array(
        [signal, noise_local, dot_local, y2_local, signal, noise_alone, dot_alone, y2_alone]
        + [signal, noise_acc, dot_acc, y2_acc]
    )
