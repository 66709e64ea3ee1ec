"""The end-to-end phase: the whole-model configurations measured against the float model, where the base's
error is born (accumulated and local error) and which points cause it (sensitivity), the precision curve
over that ranking and its knee, the hybrid, measured again on every sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import onnxruntime as ort
from onnx import ModelProto

from app.quant import localize, sensitivity
from app.quant.calibration import Batch, CalibrationData
from app.quant.configs import CONFIGS, HYBRID, REFERENCE_BYTES
from app.quant.evaluate import (
    OutputError,
    Reference,
    compare,
    compare_batches,
    float_output_names,
    float_outputs,
    summed,
    worst_sqnr,
)
from app.quant.hybrid import CurvePoint, max_steps, point_graph, precision_curve
from app.quant.model import infer_types
from app.quant.progress import CancelCheck, ProgressCallback, check_cancel, report
from app.quant.qdq import build_qdq_model
from app.quant.runtime import session
from app.quant.sensitivity import GATE, StagedModel
from app.runtime.session import QDQ_LEVEL, in_lanes

if TYPE_CHECKING:
    from app.quant.analysis import QuantAnalysis


def record_for(model: ModelProto) -> Reference | None:
    """Where the statistics pass can keep the float outputs for the end-to-end phase: outputs a run can
    fetch (none of them a graph input), held up to REFERENCE_BYTES."""
    inputs = {i.name for i in model.graph.input}
    outputs = float_output_names(model)
    return Reference(outputs, REFERENCE_BYTES) if outputs and not inputs & set(outputs) else None


def end_to_end(
    analysis: QuantAnalysis,
    payload: bytes,
    data: CalibrationData,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
    kept_outputs: Reference | None = None,
) -> None:
    """Measure the whole-model configurations, map where the base's error is born and which points
    cause it, measure the precision curve over that ranking and its knee (the hybrid). ``kept_outputs``:
    the data and float outputs the statistics pass kept, if it kept them all."""
    options = analysis.options
    sessions = {
        label: session(analysis.qdq_model(label), QDQ_LEVEL, folder=analysis.folder, lanes=True) for label in CONFIGS
    }
    reference: ort.InferenceSession | None = None
    if kept_outputs is not None and kept_outputs.complete:
        record = kept_outputs
        per_batch = compare_batches(record, sessions, [], record.samples, progress, cancel)
    else:
        reference = session(payload, folder=analysis.folder, lanes=True)
        record = Reference(float_outputs(reference), REFERENCE_BYTES)
        per_batch = compare_batches(
            reference, sessions, data.batches(), data.num_samples, progress, cancel, record=record
        )
    del sessions
    measured = {label: summed(batches) for label, batches in per_batch.items()}
    base = options.hybrid_base or max(("uint8/minmax", "uint8/kl"), key=lambda b: worst_sqnr(measured[b]))
    analysis.hybrid_base, analysis.error_config = base, base
    first = _first(record, reference, data, max(options.sensitivity_samples, options.search_samples))
    _error_map(analysis, base, first.split(options.sensitivity_samples)[0].batches, progress, cancel)
    kept = first.split(options.search_samples)[0]
    analysis.curve_samples = kept.samples
    on_subset = {label: summed(batches, len(kept.batches)) for label, batches in per_batch.items()}
    knee = _curve(analysis, base, kept, on_subset, progress, cancel)
    ranking = [s.tensor for s in analysis.sensitivity]
    if knee.k == 0:
        measured[HYBRID] = measured[base]
    elif set(knee.int16) == set(ranking):
        measured[HYBRID] = measured["int16/minmax"]
    else:  # the knee was measured on the curve's samples: only the others are left
        candidate = session(analysis.qdq_model(HYBRID), QDQ_LEVEL, folder=analysis.folder, lanes=True)
        if record.complete:
            rest = record.split(kept.samples)[1]
            others = compare(rest, {HYBRID: candidate}, [], rest.samples, progress, cancel, "recommendation")[HYBRID]
            measured[HYBRID] = {name: error + others.get(name, OutputError()) for name, error in knee.outputs.items()}
        else:
            assert reference is not None, "an incomplete record comes from the session run here"
            measured.update(
                compare(
                    reference, {HYBRID: candidate}, data.batches(), data.num_samples, progress, cancel, "recommendation"
                )
            )
    analysis.end_to_end = measured
    analysis.end_to_end_samples = data.num_samples
    report(progress, 1, 1, "done")


def _error_map(
    analysis: QuantAnalysis, base: str, few: list[Batch], progress: ProgressCallback | None, cancel: CancelCheck | None
) -> None:
    """Accumulated and local error at every point of the configuration ``base``, every point's sensitivity
    and whether weights or activations cause the error, on the samples ``few``."""
    grid = analysis.precision(base)
    weights = analysis.weight_grids(grid)
    analysis.accumulated, analysis.local, alone = localize.measure(
        analysis.qdq_source,
        analysis.qdq_for(grid),
        grid,
        weights,
        analysis.weight_values,
        analysis.bias_values,
        few,
        analysis.folder,
        progress,
        cancel,
    )
    # The gated model switches every point and every weight alone.
    staged = StagedModel(
        build_qdq_model(analysis.qdq_source, grid, weights, analysis.weight_values, gate=GATE),
        analysis.qdq_source,
        list(grid),
        infer_types(analysis.qdq_source),
        analysis.folder,
    )
    floats = [staged.float_values(batch) for batch in few]
    measured_points = sensitivity.measure(staged, floats, progress, cancel)
    # Where the toolkit's 16-bit layers have 16-bit weights, a layer's weights go with it, and the hybrid is
    # ranked by the point's sensitivity with its layer's weights (estimated from the error map).
    if analysis.toolkit.tier("int16").weight.bits > analysis.toolkit.tier("uint8").weight.bits:
        weighted = {point for layer_points in (analysis.weight_layers or {}).values() for point in layer_points}
        measured_points = [
            sensitivity.with_weights(s, alone[s.tensor].sqnr_db, analysis.local[s.tensor].sqnr_db)
            if s.tensor in weighted and s.tensor in alone
            else s
            for s in measured_points
        ]
    analysis.sensitivity = measured_points
    flags = {"activations_only": range(len(grid))}
    if weights:
        flags["weights_only"] = range(len(grid), len(grid) + len(weights))
    analysis.error_source = dict(
        zip(flags, in_lanes(lambda on: sensitivity.errors_with(staged, floats, on), flags.values()), strict=True)
    )
    analysis.sensitivity_samples = sum(_samples(b) for b in few)


def _curve(
    analysis: QuantAnalysis,
    base: str,
    kept: Reference,
    on_subset: dict[str, dict[str, OutputError]],
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
) -> CurvePoint:
    """The precision curve over the sensitivity ranking, measured on ``kept`` (k = 0 and all-16-bit from the
    whole configurations' first batches, ``on_subset``); sets ``analysis.hybrid`` and returns the knee."""
    options = analysis.options

    def measure(promoted: set[str]) -> dict[str, OutputError]:
        check_cancel(cancel)
        candidate = session(
            analysis.qdq_for(analysis.hybrid_precision(base, promoted)), QDQ_LEVEL, folder=analysis.folder, lanes=True
        )
        return compare(kept, {HYBRID: candidate}, kept.batches, kept.samples, None, cancel)[HYBRID]

    ranking = [s.tensor for s in sorted(analysis.sensitivity, key=lambda s: s.layer_sqnr_db)]
    analysis.hybrid = precision_curve(
        ranking,
        point_graph(analysis.model, [t.stats.tensor for t in analysis.tensors.values()]),
        measure,
        options.thresholds.grade_outputs,
        {0: on_subset[base], len(ranking): on_subset["int16/minmax"]},
        options.target_sqnr_db,
        options.target_margin_db,
        lambda steps: report(progress, steps, max_steps(len(ranking)), "hybrid"),
    )
    return analysis.hybrid.curve[analysis.hybrid.knee]


def _samples(batch: Batch) -> int:
    return next(iter(batch.values())).shape[0]


def _first(record: Reference, reference: ort.InferenceSession | None, data: CalibrationData, count: int) -> Reference:
    """The first ``count`` samples and their float outputs: from what the end-to-end phase kept, else the
    data read and the float model run again."""
    if record.complete:
        return record.split(count)[0]
    assert reference is not None, "an incomplete record comes from the end-to-end phase, which has the session"
    batches, held = [], 0
    for batch in data.batches():
        if held >= count:
            break
        batches.append(batch)
        held += _samples(batch)
    return Reference.measured(reference, batches)
