"""The whole analysis: statistics pass, ranges and errors, end-to-end QDQ runs, hybrid search.

``analyze`` is the entry point for the CLI and for a background job runner: it reports
progress per phase and checks for cancellation between batches and between tensors.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from onnx import ModelProto

from app.graph import ModelDocument, WorkbenchError, save_model
from app.quant.calibration import CalibrationData
from app.quant.configs import CONFIGS, HYBRID
from app.quant.end_to_end import end_to_end, record_for
from app.quant.errors import QuantError
from app.quant.evaluate import OutputError, compare
from app.quant.fold import fold_layers
from app.quant.hybrid import HybridResult
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
from app.quant.options import QuantOptions
from app.quant.progress import CancelCheck, ProgressCallback, check_cancel
from app.quant.qdq import ActivationQuant, WeightQuant, bias_values, build_qdq_model, qdq_opset
from app.quant.ranges import ALGORITHMS
from app.quant.runtime import session
from app.quant.sensitivity import PointSensitivity
from app.quant.stats import collect_statistics
from app.quant.tensor_results import TensorResult, tensor_results
from app.quant.toolkits import DEFAULT_TOOLKIT, TOOLKITS, Toolkit, toolkit
from app.quant.weights import WeightReport, analyse_weight
from app.runtime.session import QDQ_LEVEL


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
        reference = session(self.model, folder=self.folder, lanes=True)
        candidate = session(self.qdq_for(activations), QDQ_LEVEL, folder=self.folder, lanes=True)
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
    if {s.name for s in input_specs(proto)} != {s.name for s in data.specs}:
        raise QuantError("the calibration data was opened for a different model")
    points = quantizable_points(proto, options.target)
    profile = toolkit(options.target, options.per_channel_weights, options.int16_weights)
    check_cancel(cancel)
    payload = loaded.payload()
    record = record_for(proto) if options.end_to_end and validation is None else None
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
        profile.statistics_level,
    )
    tensors = tensor_results(stats, options, profile, progress, cancel)
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
        end_to_end(analysis, payload, validation or data, progress, cancel, record)
    return analysis


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
