"""The whole analysis: statistics pass, ranges and errors, end-to-end QDQ runs, hybrid search.

``analyze`` is the entry point for the CLI and for a background job runner: it reports
progress per phase and checks for cancellation between batches and between tensors.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import ModelProto, TensorProto

from app.graph import ModelDocument, WorkbenchError, save_model
from app.quant import localize, sensitivity
from app.quant.calibration import Batch, CalibrationData
from app.quant.errors import QuantError
from app.quant.evaluate import OutputError, Reference, compare, compare_batches, float_outputs, summed, worst_sqnr
from app.quant.fold import fold_layers
from app.quant.histogram import DEFAULT_CAPACITY
from app.quant.hybrid import CurvePoint, HybridResult, max_steps, point_graph, precision_curve
from app.quant.model import (
    ActivationTensor,
    LoadedModel,
    WeightTensor,
    constant_values,
    infer_types,
    input_specs,
    load_model,
    quantization_points,
    weight_layers,
    weight_tensors,
)
from app.quant.progress import CancelCheck, ProgressCallback, check_cancel, report
from app.quant.qdq import ActivationQuant, WeightQuant, bias_values, build_qdq_model, qdq_opset
from app.quant.quantizers import expected_squared_error, histogram_bins, histogram_sqnr, sample_sqnr
from app.quant.ranges import ALGORITHMS, KlMethod, Range, all_ranges
from app.quant.runtime import session
from app.quant.sensitivity import GATE, PointSensitivity, StagedModel
from app.quant.stats import TensorStatistics, collect_statistics
from app.quant.toolkits import DEFAULT_TOOLKIT, TIERS, TOOLKITS, Toolkit, toolkit
from app.quant.verdict import Thresholds
from app.quant.weights import WeightReport, analyse_weight
from app.runtime.session import QDQ_LEVEL, in_lanes

#: The whole-model configurations measured end to end (label -> precision tier, range algorithm); a
#: tier is the toolkit's 8-bit ("uint8") or 16-bit ("int16") precision, see app.quant.toolkits.
CONFIGS: dict[str, tuple[str, str]] = {
    "uint8/minmax": ("uint8", "minmax"),
    "uint8/kl": ("uint8", "kl"),
    "int16/minmax": ("int16", "minmax"),
}
HYBRID = "hybrid"
#: The data and the float outputs the end-to-end phase may hold, so the curve and the knee do not run the
#: float model again (19 photos at 640x640 and PP-OCRv4's output: about 125 MB)
REFERENCE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class QuantOptions:
    """Knobs of the analysis; ``target`` is the toolkit whose arithmetic and layers are simulated."""

    target: str = DEFAULT_TOOLKIT
    percentile: float = 99.99
    #: histogram bins of the KL search; None: the toolkit's default (Acuity 2^11)
    kl_bins: int | None = None
    kl_levels: int = 128
    kl_method: KlMethod = "tensorrt"
    histogram_capacity: int = DEFAULT_CAPACITY
    sample_size: int = 4096
    #: onnxruntime target: per-channel weight scales, and int16 layers with int16 weights too (W16A16,
    #: as Acuity's and RKNN's int16 layers always have); default A16W8. The NPU toolkits fix both.
    per_channel_weights: bool = False
    int16_weights: bool = False
    end_to_end: bool = True
    target_margin_db: float = 3.0
    target_sqnr_db: float | None = None
    hybrid_base: str | None = None
    #: samples of the precision curve and of the weights-only / activations-only runs
    search_samples: int = 4
    #: samples of the error map (accumulated and local error) and of the sensitivity ranking: a run per
    #: point each, so few; one 640x640 image holds millions of values per tensor
    sensitivity_samples: int = 1
    seed: int = 0
    #: absolute thresholds of the verdict on each configuration's measured outputs
    thresholds: Thresholds = Thresholds()

    def __post_init__(self) -> None:
        if self.target not in TOOLKITS:
            raise QuantError(f"unknown target toolkit {self.target!r}; choose from {list(TOOLKITS)}")
        if not 50 < self.percentile <= 100:
            raise QuantError("percentile must be in (50, 100]")
        if self.kl_levels < 2 or (self.kl_bins is not None and self.kl_bins < 2 * self.kl_levels):
            raise QuantError("KL search needs at least 2 levels and twice as many bins as levels")
        if self.hybrid_base not in (None, "uint8/minmax", "uint8/kl"):
            raise QuantError("hybrid base must be uint8/minmax or uint8/kl")
        if self.search_samples < 1 or self.sensitivity_samples < 1:
            raise QuantError("search_samples and sensitivity_samples must be at least 1")
        if self.seed < 0:
            raise QuantError(f"the seed must be 0 or more (numpy's generators take no negative seed), not {self.seed}")
        if not all(math.isfinite(v) for v in (self.target_margin_db, self.target_sqnr_db or 0.0)):
            raise QuantError("the SQNR targets must be finite numbers")


@dataclass
class TensorResult:
    """Per-tensor outcome: ranges of every algorithm and predicted (and spot-checked) SQNR."""

    stats: TensorStatistics
    ranges: dict[str, Range]
    sqnr_db: dict[str, float | None]
    sampled_sqnr_db: dict[str, float | None]


@dataclass
class QuantAnalysis:
    """Everything measured; turn it into a report, a quantization table or a QDQ model."""

    model: ModelProto
    options: QuantOptions
    samples: int
    synthetic: bool
    data_description: str
    tensors: dict[str, TensorResult]
    weights: dict[str, WeightReport]
    weight_values: dict[str, np.ndarray] = field(repr=False)
    end_to_end: dict[str, dict[str, OutputError]] = field(default_factory=dict)
    end_to_end_samples: int = 0
    hybrid: HybridResult | None = None
    hybrid_base: str | None = None
    #: samples the precision curve and the error source were measured on (the first of the data)
    curve_samples: int = 0
    #: where the error is born, measured on the hybrid's base: per point, the whole model quantized
    #: (accumulated) and its layer alone (local), against the float model, on ``sensitivity_samples``
    accumulated: dict[str, OutputError] = field(default_factory=dict)
    local: dict[str, OutputError] = field(default_factory=dict)
    #: every point's model-output error with only it quantized (the base's grid), worst first
    sensitivity: list[PointSensitivity] = field(default_factory=list)
    sensitivity_samples: int = 0
    #: the base with only its weights quantized, and with only its activations
    error_source: dict[str, dict[str, OutputError]] = field(default_factory=dict)
    #: the folder the model was read from (None: built in memory); its external data resolves there
    folder: Path | None = None
    #: weight -> the activation tensors of its layers (whose precision is the weight's under int16_weights)
    weight_layers: dict[str, set[str]] | None = None
    #: biases the toolkit rounds onto its grid (NPU targets; values of the folded model)
    bias_values: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    error_config: str | None = None
    _qdq_source: ModelProto | None = field(default=None, init=False, repr=False)
    #: the float model as the toolkit quantizes it (layers' BN and scale-and-shift folded), None: ``model``
    folded_model: ModelProto | None = field(default=None, init=False, repr=False)

    @property
    def toolkit(self) -> Toolkit:
        """The profile of the target toolkit (with the onnxruntime weight options applied)."""
        options = self.options
        return toolkit(options.target, options.per_channel_weights, options.int16_weights)

    def precision(self, label: str) -> dict[str, ActivationQuant]:
        """Per-tensor grid of a configuration: one of CONFIGS, or "hybrid"."""
        if label == HYBRID:
            if self.hybrid is None or self.hybrid_base is None:
                raise QuantError("no hybrid recommendation: the end-to-end phase did not run")
            return self.hybrid_precision(self.hybrid_base, set(self.hybrid.int16))
        if label not in CONFIGS:
            raise QuantError(f"unknown configuration {label!r}; choose from {[*CONFIGS, HYBRID]}")
        tier, algorithm = CONFIGS[label]
        quantizer = self.toolkit.tier(tier).activation
        return {name: ActivationQuant(quantizer, *t.ranges[algorithm], algorithm) for name, t in self.tensors.items()}

    def hybrid_precision(self, base: str, promoted: set[str]) -> dict[str, ActivationQuant]:
        """The base configuration with the promoted tensors in int16 (Min-Max ranges)."""
        grid = self.precision(base)
        high = self.toolkit.tier("int16").activation
        for name in promoted:
            grid[name] = ActivationQuant(high, *self.tensors[name].ranges["minmax"], "minmax")
        return grid

    def curve_precision(self, k: int) -> dict[str, ActivationQuant]:
        """The grid of the precision curve's point ``k``: its int16 points over the hybrid's base."""
        if self.hybrid is None or self.hybrid_base is None:
            raise QuantError("no precision curve: the end-to-end phase did not run")
        for point in self.hybrid.curve:
            if point.k == k:
                return self.hybrid_precision(self.hybrid_base, set(point.int16))
        raise QuantError(f"k={k} is not a measured point of the curve; measured: {[p.k for p in self.hybrid.curve]}")

    def override_precision(self, base: str, overrides: dict[str, str]) -> dict[str, ActivationQuant]:
        """A configuration with some tensors switched, as a person picks them after the analysis.

        ``overrides`` maps tensor names to "int16" (Min-Max range, as the hybrid uses), "uint8"
        (the base's uint8 range algorithm, Min-Max for an int16 base) or "dtype/algorithm"; the
        two are the target toolkit's 16-bit and 8-bit precisions.
        """
        grid = self.precision(base)
        uint8_algorithm = (
            CONFIGS[self.hybrid_base or "uint8/minmax"][1]
            if base == HYBRID
            else (CONFIGS[base][1] if CONFIGS[base][0] == "uint8" else "minmax")
        )
        unknown = sorted(set(overrides) - set(self.tensors))
        if unknown:
            raise QuantError(f"not quantization points of this analysis: {unknown[:5]}")
        for name, choice in overrides.items():
            dtype, _, algorithm = str(choice).partition("/")
            if dtype not in ("uint8", "int16") or (algorithm and algorithm not in ALGORITHMS):
                raise QuantError(
                    f"precision {choice!r} of {name!r}: use uint8 or int16, optionally with /{'|'.join(ALGORITHMS)}"
                )
            algorithm = algorithm or ("minmax" if dtype == "int16" else uint8_algorithm)
            grid[name] = ActivationQuant(
                self.toolkit.tier(dtype).activation, *self.tensors[name].ranges[algorithm], algorithm
            )
        return grid

    def measure(
        self,
        activations: dict[str, ActivationQuant],
        data: CalibrationData,
        progress: ProgressCallback | None = None,
        cancel: CancelCheck | None = None,
    ) -> dict[str, OutputError]:
        """End-to-end error of a QDQ model with this precision against the float model."""
        reference = session(self.model, folder=self.folder)
        candidate = session(self.qdq_for(activations), QDQ_LEVEL, folder=self.folder)
        return compare(
            reference, {"candidate": candidate}, data.batches(), data.num_samples, progress, cancel, "end_to_end"
        )["candidate"]

    def save(self, path: str | Path) -> None:
        """Pickle the analysis without the model and its weights (the caller keeps the model file)."""
        light = dataclasses.replace(self, model=ModelProto(), weight_values={}, bias_values={})
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(light, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    def weight_grids(
        self, activations: dict[str, ActivationQuant] | None = None
    ) -> dict[str, tuple[WeightTensor, WeightQuant]]:
        """Each weight in the precision of its layer (the grid of the layer's output in ``activations``):
        the toolkit's weight quantizer of that precision, per tensor or per channel.

        A weight shared by layers of both precisions takes the 16-bit one. With the onnxruntime
        target int16 applies to activations only by default (A16W8): with int16 weights too,
        all-int16 sits near 80 dB, so a hybrid "within 3 dB of all-int16" promotes nearly
        everything; there an absolute ``target_sqnr_db`` is the useful hybrid target.
        """
        profile = self.toolkit
        low, high = profile.tier("uint8"), profile.tier("int16")
        promoted = {name for name, aq in (activations or {}).items() if aq.quantizer == high.activation}
        layers = self.weight_layers or {}
        grids = {}
        for name, rep in self.weights.items():
            precision = high if layers.get(name, set()) & promoted else low
            grids[name] = (
                rep.weight,
                WeightQuant(precision.weight, rep.weight.channel_axis if precision.per_channel else None),
            )
        return grids

    def qdq_model(self, label: str = HYBRID) -> ModelProto:
        """The QDQ model of a configuration, runnable in onnxruntime."""
        return self.qdq_for(self.precision(label))

    @property
    def qdq_source(self) -> ModelProto:
        """The float model the QDQ models are built from: as the toolkit sees it, at a QDQ opset."""
        if self._qdq_source is None:
            self._qdq_source = qdq_opset(self.folded_model or self.model)
        return self._qdq_source

    def qdq_for(self, activations: dict[str, ActivationQuant], weights: bool = True) -> ModelProto:
        """The QDQ model for an explicit per-tensor precision (float tensors it leaves alone may still
        refer to the external data in ``folder``: ``export_qdq`` writes a model that stands alone);
        ``weights`` False leaves the weights in float."""
        if not weights:
            return build_qdq_model(self.qdq_source, activations, {}, {})
        return build_qdq_model(
            self.qdq_source, activations, self.weight_grids(activations), self.weight_values, self.bias_values
        )

    def export_qdq(
        self, path: str | Path, label: str = HYBRID, activations: dict[str, ActivationQuant] | None = None
    ) -> list[Path]:
        """Write the QDQ model of a configuration (or of an explicit precision); returns the files written.

        Weights go to ``<file>.data`` beside it when the float model kept them external or the result
        is over 2 GB; the float model's external data is copied file to file, never read into memory.
        """
        grid = activations if activations is not None else self.precision(label)
        try:
            return save_model(ModelDocument(self.qdq_for(grid), self.folder), path)
        except WorkbenchError as exc:
            raise QuantError(str(exc)) from exc


def _tensor_result(stats: TensorStatistics, options: QuantOptions, profile: Toolkit) -> TensorResult:
    """Ranges of every algorithm and the predicted SQNR of each (tier, algorithm) in the toolkit's arithmetic."""
    hist = stats.histogram
    if hist.count == 0:
        raise QuantError(f"tensor {stats.tensor.name!r} held no finite values")
    low = profile.tier("uint8").activation
    ranges = all_ranges(
        hist, options.percentile, options.kl_bins or profile.kl_bins, options.kl_levels, options.kl_method, low
    )
    keys = [(tier, profile.tier(tier).activation, a) for tier in TIERS for a in ALGORITHMS]
    predicted = histogram_sqnr(hist, [(q, *ranges[a]) for _, q, a in keys])
    sqnr = {f"{tier}/{a}": v for (tier, _, a), v in zip(keys, predicted)}
    sampled = {f"{tier}/{a}": sample_sqnr(stats.sample, q, *ranges[a]) for tier, q, a in keys}
    return TensorResult(stats, ranges, sqnr, sampled)


def _sensitivity(result: TensorResult, config: str, profile: Toolkit) -> float:
    """Mean squared error of ``config`` relative to the tensor's typical (median non-zero) x**2.

    Why not 1/SQNR: an outlier channel carries most of a tensor's energy, so its SQNR looks
    fine while the other channels drown in the coarse steps the outlier forced.
    """
    hist = result.stats.histogram
    tier, algorithm = CONFIGS[config]
    quantizer = profile.tier(tier).activation
    edges, counts = histogram_bins(hist)
    scale, zero_point = quantizer.params(*result.ranges[algorithm])
    total = counts.sum()
    if total <= 0:
        return 0.0
    mse = float(expected_squared_error(edges, counts, float(scale), zero_point, quantizer.qmin, quantizer.qmax)) / total
    abs_counts = hist.resample_abs(2048, drop_zeros=True)
    cum = np.cumsum(abs_counts)
    top = max(abs(hist.min), abs(hist.max))
    typical = (np.searchsorted(cum, 0.5 * cum[-1]) + 0.5) * top / len(abs_counts) if cum[-1] > 0 else 0.0
    return mse / max(typical * typical, 1e-30)


def quantizable_points(model: ModelProto, target: str = DEFAULT_TOOLKIT) -> list[ActivationTensor]:
    """The quantization points (the target toolkit's layers), or a QuantError that says why the model has none."""
    points = quantization_points(model, infer_types(model), TOOLKITS[target].fuses_layers)
    if not points:
        raise QuantError(
            "the model has no float32 activation tensors to quantize (is it already quantized, "
            "or does it only take integer inputs to integer outputs?)"
        )
    return points


def _as_toolkit_sees_it(
    model: ModelProto, points: list[ActivationTensor], values: dict[str, np.ndarray], profile: Toolkit
) -> tuple[ModelProto | None, dict[str, np.ndarray]]:
    """The float model and constant values the toolkit quantizes: with fused layers, BN and constant
    scale-and-shift folded into the weights and biases (None: the model as it is)."""
    if not profile.fuses_layers:
        return None, values
    folded, changed = fold_layers(model, points, values)
    return folded, {**values, **changed}


def analyze(
    model: str | Path | ModelProto | LoadedModel,
    data: CalibrationData,
    options: QuantOptions | None = None,
    validation: CalibrationData | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> QuantAnalysis:
    """Run the analysis. Phases reported: statistics, ranges, end_to_end, hybrid.

    ``validation`` (optional) is used for the end-to-end runs instead of the calibration data.
    Raises QuantError on bad input, QuantCancelled when ``cancel`` fires.
    """
    options = options or QuantOptions()
    loaded = load_model(model)
    proto = loaded.proto
    specs = input_specs(proto)
    if {s.name for s in specs} != {s.name for s in data.specs}:
        raise QuantError("the calibration data was opened for a different model")
    points = quantizable_points(proto, options.target)
    profile = toolkit(options.target, options.per_channel_weights, options.int16_weights)
    check_cancel(cancel)
    payload = loaded.payload()
    record = _record_for(proto) if options.end_to_end and validation is None else None
    stats = collect_statistics(
        proto,
        points,
        data,
        progress,
        cancel,
        options.histogram_capacity,
        options.sample_size,
        options.seed,
        payload,
        loaded.folder,
        record,
    )

    tensors: dict[str, TensorResult] = {}
    report(progress, 0, len(points), "ranges")
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="quant-ranges") as pool:
        futures = {name: pool.submit(_tensor_result, st, options, profile) for name, st in stats.items()}
        try:
            for done, (name, future) in enumerate(futures.items(), start=1):
                check_cancel(cancel)
                tensors[name] = future.result()
                report(progress, done, len(points), "ranges")
        finally:
            for future in futures.values():
                future.cancel()

    source, values = _as_toolkit_sees_it(proto, points, constant_values(proto, loaded.folder), profile)
    weights = weight_tensors(proto, values)
    weight_reports = {w.name: analyse_weight(w, values[w.name], profile.tier("uint8").weight) for w in weights}
    analysis = QuantAnalysis(
        proto,
        options,
        data.num_samples,
        data.synthetic,
        data.description,
        tensors,
        weight_reports,
        {w.name: values[w.name] for w in weights},
        folder=loaded.folder,
        weight_layers=weight_layers(weights, points),
    )
    analysis.folded_model = source
    analysis.bias_values = bias_values(source, values) if source is not None else {}
    if options.end_to_end:
        _end_to_end(analysis, payload, validation or data, progress, cancel, record)
    return analysis


def _record_for(model: ModelProto) -> Reference | None:
    """Where the statistics pass can keep the float outputs for the end-to-end phase: outputs a run can
    fetch (none of them a graph input), held up to REFERENCE_BYTES."""
    inputs = {i.name for i in model.graph.input}
    outputs = [o.name for o in model.graph.output if o.type.tensor_type.elem_type == TensorProto.FLOAT]
    return Reference(outputs, REFERENCE_BYTES) if outputs and not inputs & set(outputs) else None


def _end_to_end(
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
    _error_map(analysis, _first(record, reference, data, options.sensitivity_samples).batches, progress, cancel)
    kept = _first(record, reference, data, options.search_samples)
    analysis.curve_samples = kept.samples
    on_subset = {label: summed(batches, len(kept.batches)) for label, batches in per_batch.items()}
    knee = _curve(analysis, kept, on_subset, progress, cancel)
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
    analysis: QuantAnalysis, few: list[Batch], progress: ProgressCallback | None, cancel: CancelCheck | None
) -> None:
    """Accumulated and local error at every point of the base, every point's sensitivity and whether
    weights or activations cause the error, on the samples ``few``."""
    grid = analysis.precision(analysis.error_config)
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
        zip(flags, in_lanes(lambda on: sensitivity.errors_with(staged, floats, on), flags.values()))
    )
    analysis.sensitivity_samples = sum(_samples(b) for b in few)


def _curve(
    analysis: QuantAnalysis,
    kept: Reference,
    on_subset: dict[str, dict[str, OutputError]],
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
) -> CurvePoint:
    """The precision curve over the sensitivity ranking, measured on ``kept`` (k = 0 and all-16-bit from the
    whole configurations' first batches, ``on_subset``); sets ``analysis.hybrid`` and returns the knee."""
    options, base = analysis.options, analysis.error_config

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


def load_analysis(path: str | Path, model: str | Path | ModelProto | LoadedModel) -> QuantAnalysis:
    """An analysis written by ``QuantAnalysis.save``, joined again with the model it was run on.

    Only for files this program wrote itself (it is a pickle).
    """
    try:
        with open(path, "rb") as f:
            analysis = pickle.load(f)
    except FileNotFoundError:
        raise
    except Exception as exc:  # written by another version of this program
        raise QuantError(f"the saved analysis cannot be read ({type(exc).__name__}); run the analysis again") from exc
    if not isinstance(analysis, QuantAnalysis):
        raise QuantError("the file does not hold a quantization analysis")
    if analysis.hybrid is not None and not hasattr(analysis.hybrid, "curve"):
        raise QuantError("the analysis was saved by an older version (before the precision curve); run it again")
    if "target" not in vars(analysis.options):  # saved before toolkit profiles: every tensor, onnxruntime's grids
        object.__setattr__(analysis.options, "target", "onnxruntime")
    loaded = load_model(model)
    analysis.model, analysis.folder = loaded.proto, loaded.folder
    points = [t.stats.tensor for t in analysis.tensors.values()]
    analysis.folded_model, values = _as_toolkit_sees_it(
        analysis.model, points, constant_values(analysis.model, analysis.folder), analysis.toolkit
    )
    analysis.weight_values = {name: values[name] for name in analysis.weights}
    analysis.bias_values = bias_values(analysis.folded_model, values) if analysis.folded_model is not None else {}
    return analysis


def model_inputs(model: str | Path | ModelProto) -> tuple[LoadedModel, list]:
    """Load a model and its input specs (to open calibration data for it); pass the model on to ``analyze``."""
    loaded = load_model(model)
    return loaded, input_specs(loaded.proto)
