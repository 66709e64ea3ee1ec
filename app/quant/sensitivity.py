"""Which points cause the error: the model outputs with one point's activation quantized, everything
else float, measured for every point.

Noise from different points does not add up (quantizing a group of neighbours can cancel what one of
them does alone), so a group's error bounds nothing and every point is run on its own. A run per
point over the whole model would cost the model once per point; instead the gated QDQ model (each
point's Q/DQ in an If on its own flag, ``build_qdq_model(gate=...)``) is cut into stages along the
graph's depth, the float tensors crossing each cut are kept once per sample, and a point's run starts
at its own stage: about half the model per point on average.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

from app.quant.calibration import Batch
from app.quant.evaluate import OutputError, float_output_names, worst_sqnr
from app.quant.progress import CancelCheck, ProgressCallback, check_cancel, report
from app.quant.runtime import run, session
from app.runtime.session import in_lanes

#: Name of the bool[points] input of the gated model.
GATE = "quantization_gate"
#: Stages the gated model is cut into (more: less recomputation per point, more session overhead).
STAGES = 12


@dataclass(frozen=True)
class PointSensitivity:
    """The model outputs' error with only ``tensor`` quantized."""

    tensor: str
    outputs: dict[str, OutputError]
    #: the worst output SQNR with the point's layer's weights quantized too (the toolkit promotes them with
    #: the layer), estimated by ``with_weights``; None where the weights stay 8-bit in 16-bit layers
    with_weights_db: float | None = None

    @property
    def output_sqnr_db(self) -> float:
        return worst_sqnr(self.outputs)

    @property
    def layer_sqnr_db(self) -> float:
        """What promoting the layer to 16 bit takes away: its weights' error too, where they go with it."""
        return self.with_weights_db if self.with_weights_db is not None else self.output_sqnr_db

    def to_json(self) -> dict:
        worst = min(self.outputs.values(), key=lambda e: -math.inf if e.sqnr_db is None else e.sqnr_db)
        entry = {
            "tensor": self.tensor,
            "output_sqnr_db": self.output_sqnr_db,
            "cosine": worst.cosine,
            "outputs": {name: e.to_json() for name, e in self.outputs.items()},
        }
        if self.with_weights_db is not None:
            entry["with_weights"] = {"output_sqnr_db": self.with_weights_db, "estimated": True}
        return entry


def with_weights(
    sensitivity: PointSensitivity, activation_db: float | None, local_db: float | None
) -> PointSensitivity:
    """The point's sensitivity with its layer's weights quantized too, estimated without another run: the
    outputs' noise from the point grows with the noise at the point, and the layer's local error (weights
    and output, ``local_db``) is that much noisier than its activation alone (``activation_db``).
    Measuring it instead would cost a second run per point."""
    if activation_db is None or local_db is None or not math.isfinite(sensitivity.output_sqnr_db):
        return sensitivity
    worse = max(0.0, activation_db - local_db)
    return PointSensitivity(sensitivity.tensor, sensitivity.outputs, sensitivity.output_sqnr_db - worse)


def _references(node: NodeProto) -> set[str]:
    """Every tensor a node reads, its subgraphs' outer-scope reads included."""
    names = set(node.input)
    for attr in node.attribute:
        for graph in [attr.g] if attr.HasField("g") else list(attr.graphs):
            inner = {out for n in graph.node for out in n.output} | {i.name for i in graph.input}
            for n in graph.node:
                names |= _references(n) - inner
    names.discard("")
    return names


@dataclass
class _Stage:
    """One cut of a model: its session, what it reads from before it and what it hands on."""

    inputs: list[str]
    outputs: list[str]
    session: ort.InferenceSession | None


def _stages(model: ModelProto, cuts: list[int], types: dict[str, int], level: str, folder: Path | None) -> list[_Stage]:
    """The model's nodes cut at ``cuts`` (node indices, first 0, last len), each part its own session."""
    graph = model.graph
    nodes = list(graph.node)
    initializers = {t.name: t for t in graph.initializer}
    declared = {i.name: i for i in graph.input}
    reads = [_references(node) for node in nodes]
    graph_outputs = {o.name for o in graph.output}
    stages = []
    for lo, hi in pairwise(cuts):
        if lo >= hi:  # the float model has nothing between two cuts of the gated one
            stages.append(_Stage([], [], None))
            continue
        made = {out for node in nodes[lo:hi] for out in node.output}
        needed = set().union(*reads[lo:hi])
        later = set().union(*reads[hi:]) | graph_outputs
        inputs = sorted(n for n in needed - made if n not in initializers)
        outputs = sorted(made & later)
        part = helper.make_graph(
            nodes[lo:hi],
            f"stage_{len(stages)}",
            [
                declared[n]
                if n in declared
                else helper.make_tensor_value_info(n, types.get(n, TensorProto.FLOAT), None)
                for n in inputs
            ],
            [helper.make_tensor_value_info(n, types.get(n, TensorProto.FLOAT), None) for n in outputs],
            [initializers[n] for n in sorted(needed & initializers.keys())],
        )
        staged = helper.make_model(part, opset_imports=list(model.opset_import), ir_version=model.ir_version)
        stages.append(_Stage(inputs, outputs, session(staged, level, folder=folder, lanes=True)))
    return stages


class StagedModel:
    """The gated model and the float model in the same stages along the graph's depth.

    A run with some flags on starts at the first stage holding one; stages holding a flag that is on
    come from the gated model, the others from the float model, which onnxruntime optimises fully
    (Ifs block its layout and fusion passes).
    """

    def __init__(
        self,
        gated: ModelProto,
        source: ModelProto,
        points: Sequence[str],
        types: dict[str, int],
        folder: Path | None = None,
        stages: int = STAGES,
    ) -> None:
        nodes = list(gated.graph.node)
        initializers = {t.name: t for t in gated.graph.initializer}
        # Each gated tensor's If reads a flag that a Gather takes from the gate at its index.
        flags = {
            node.output[0]: int(numpy_helper.to_array(initializers[node.input[1]]))
            for node in nodes
            if node.op_type == "Gather" and node.input[0] == GATE
        }
        gated_at = {
            k: flags[node.input[0]] for k, node in enumerate(nodes) if node.op_type == "If" and node.input[0] in flags
        }
        point_flags = set(range(len(points)))
        cuts, per_stage = [0], max(1, math.ceil(len(points) / stages))
        count = 0
        for k in sorted(gated_at):
            count += gated_at[k] in point_flags
            if gated_at[k] in point_flags and count % per_stage == 0 and k + 1 < len(nodes):
                cuts.append(k + 1)
        cuts.append(len(nodes))
        made = [set(out for node in nodes[:cut] for out in node.output) for cut in cuts]
        source_nodes = list(source.graph.node)
        source_cuts = [
            1 + max((j for j, node in enumerate(source_nodes) if node.output and node.output[0] in m), default=-1)
            for m in made
        ]
        source_cuts[-1] = len(source_nodes)
        self.gated = _stages(gated, cuts, types, "basic", folder)
        self.float = _stages(source, source_cuts, types, "all", folder)
        self.stage_of = {flag: next(s for s, hi in enumerate(cuts[1:]) if k < hi) for k, flag in gated_at.items()}
        self.flags = next(v.type.tensor_type.shape.dim[0].dim_value for v in gated.graph.input if v.name == GATE)
        inputs = {i.name for i in source.graph.input}
        #: flags whose quantized value the float stages would not see (a graph input: the gated model's
        #: readers take its renamed copy): such runs stay on the gated model to the end
        self.gated_only = {index for index, name in enumerate(points) if name in inputs}
        #: the float outputs, the ones compared
        self.outputs = float_output_names(gated)
        self.points = list(points)

    def float_values(self, batch: Batch) -> dict[str, np.ndarray]:
        """Every tensor crossing a cut, of either model, and the outputs: the float run of one batch."""
        gated, floated = in_lanes(
            lambda run: run(),
            [
                lambda: self._run(self.gated, {**batch, GATE: np.zeros(self.flags, dtype=bool)}),
                lambda: self._run(self.float, dict(batch)),
            ],
        )
        return {**gated, **floated}

    def run_with(self, values: dict[str, np.ndarray], on: Sequence[int]) -> dict[str, np.ndarray]:
        """The outputs with the flags ``on`` quantized, from the float values of ``float_values``."""
        gate = np.zeros(self.flags, dtype=bool)
        gate[list(on)] = True
        stages = sorted({self.stage_of[flag] for flag in on})
        values = {**values, GATE: gate}
        if self.gated_only & set(on):
            return self._run(self.gated[stages[0] :], values)
        for k in range(stages[0], len(self.gated)):
            values = self._run([(self.gated if k in stages else self.float)[k]], values)
        return values

    @staticmethod
    def _run(stages: list[_Stage], values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = dict(values)
        for stage in stages:
            if stage.session is None:
                continue
            got = run(stage.session, stage.outputs, {name: values[name] for name in stage.inputs})
            values.update(zip(stage.outputs, (v.numpy() for v in got), strict=True))
        return values


def errors_with(
    staged: StagedModel, floats: Sequence[dict[str, np.ndarray]], on: Sequence[int]
) -> dict[str, OutputError]:
    """The outputs' error with the flags ``on`` quantized, over the float runs ``floats`` of ``float_values``."""
    errors = {o: OutputError() for o in staged.outputs}
    if len(on) == 0:
        return errors
    for values in floats:
        got = staged.run_with(values, on)
        for o in staged.outputs:
            errors[o].add(values[o], got[o])
    return errors


def measure(
    staged: StagedModel,
    floats: Sequence[dict[str, np.ndarray]],
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> list[PointSensitivity]:
    """Every point's sensitivity over the float runs ``floats`` (``staged.float_values`` of each batch), worst
    first."""

    def one(k: int) -> PointSensitivity:
        check_cancel(cancel)
        return PointSensitivity(staged.points[k], errors_with(staged, floats, [k]))

    results = []
    report(progress, 0, len(staged.points), "sensitivity")
    for result in in_lanes(one, range(len(staged.points))):  # the stages' sessions serve both lanes at once
        results.append(result)
        report(progress, len(results), len(staged.points), "sensitivity")
    return sorted(results, key=lambda r: r.output_sqnr_db)
