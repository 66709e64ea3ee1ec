"""The work of a quantization job: the engine's options and data from the request's settings and files,
and the job kinds of an analysis and of a measurement, with their progress.

A job reads everything from its analysis' folder (model, data files, meta.json with the settings), so
that any process sharing the data folder can run it (job_kinds.py names them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...graph import WorkbenchError
from ...graph.guard import element_count
from ...quant import (
    ImagePreprocess,
    QuantAnalysis,
    QuantCancelled,
    QuantError,
    QuantOptions,
    analyze,
    build_report,
    load_analysis,
    model_inputs,
    open_calibration_data,
    write_json,
)
from ...quant.calibration import CalibrationData
from ...quant.model import LoadedModel, input_specs
from ...quant.verdict import Thresholds
from ..errors import Invalid, TooLarge
from ..jobs import JOB_ID, JobCancelled, JobContext
from ..schemas.quant import Preprocess, QuantSettings
from ..uploads import Upload, unpack_zip

ANALYSIS = "analysis.pickle"
META = "meta.json"
REPORT = "report.json"
#: Each phase's share of the job, from its measured share of the default analysis on real detectors.
PROGRESS_SPANS = {
    "statistics": (0.0, 0.15),
    "ranges": (0.15, 0.18),
    "end_to_end": (0.18, 0.38),
    "error_map": (0.38, 0.42),
    "sensitivity": (0.42, 0.72),
    "hybrid": (0.72, 0.9),
    "recommendation": (0.9, 0.99),
}
UNITS = {
    "statistics": "samples",
    "ranges": "tensors",
    "end_to_end": "samples",
    "error_map": "samples",
    "sensitivity": "points",
    "hybrid": "QDQ runs",
    "recommendation": "samples",
}


def engine_options(settings: QuantSettings) -> QuantOptions:
    """The engine's options of the request's settings (422 bad_settings for a combination it refuses)."""
    try:
        return QuantOptions(
            target=settings.target,
            percentile=settings.percentile,
            kl_method=settings.kl_method,
            per_channel_weights=settings.per_channel,
            int16_weights=settings.int16_weights,
            end_to_end=settings.end_to_end,
            target_margin_db=settings.target_margin_db,
            target_sqnr_db=settings.target_sqnr_db,
            hybrid_base=settings.hybrid_base,
            search_samples=settings.search_samples,
            sensitivity_samples=settings.sensitivity_samples,
            seed=settings.seed,
            thresholds=Thresholds(settings.good_cosine, settings.good_sqnr_db, settings.marginal_cosine),
        )
    except QuantError as err:
        raise Invalid("bad_settings", str(err)) from None


def _image_setup(settings: QuantSettings, specs: list) -> tuple[ImagePreprocess, dict[str, list[int]]]:
    """Image preprocessing and, from `size`, the shape of a single input with dynamic spatial dims."""
    pre = settings.preprocess or Preprocess()
    shapes = dict(settings.shapes or {})
    if pre.size is not None:
        if len(pre.size) != 2 or len(specs) != 1 or len(specs[0].shape) != 4:
            raise Invalid("bad_settings", "size is [H, W] for a model with one 4-D input")
        declared = specs[0].shape
        nhwc = pre.layout == "nhwc" or (pre.layout is None and declared[3] in (1, 3) and declared[1] not in (1, 3))
        channels = declared[3] if nhwc else declared[1]
        channels = channels if isinstance(channels, int) else 3
        batch = declared[0] if isinstance(declared[0], int) else 1
        height, width = pre.size
        shapes[specs[0].name] = [batch, height, width, channels] if nhwc else [batch, channels, height, width]
    preprocess = ImagePreprocess(
        mean=tuple(pre.mean) if pre.mean else (0.0,),
        scale=tuple(pre.scale) if pre.scale else None,
        std=tuple(pre.std) if pre.std else None,
        channel_order=pre.channel_order,
        layout=pre.layout,
    )
    return preprocess, shapes


def data_paths(upload: Upload, field: str) -> list[Path]:
    """The uploaded files of a field; a zip of images is unpacked (within the upload's budget) into a folder."""
    paths: list[Path] = []
    for item in (f for f in upload.files if f.field == field):
        if item.path.suffix.lower() == ".zip":
            target = item.path.with_name(item.path.name + ".images")
            assert upload.budget is not None  # files come only from receive_multipart, which sets it
            unpack_zip(item.path, target, upload.budget)
            item.path.unlink()
            paths.append(target)
        else:
            paths.append(item.path)
    return paths


def open_data(specs: list, settings: QuantSettings, paths: list[Path], max_elements: int) -> CalibrationData:
    """Calibration (or validation) data for the model's inputs; QuantError on any mismatch, 413 for
    batches over the element limit of /run (nothing is allocated until the job reads a batch)."""
    preprocess, shapes = _image_setup(settings, specs)
    shape_map = {k: tuple(v) for k, v in shapes.items()}
    if paths:
        data = open_calibration_data(specs, paths, None, preprocess, shape_map, settings.seed)
    else:
        data = open_calibration_data(specs, None, settings.random, preprocess, shape_map, settings.seed)
    for name, shape in data.shapes.items():
        count = element_count(shape)
        if count > max_elements:
            raise TooLarge(
                "too_large",
                f"input '{name}': a batch of shape {list(shape)} has {count:,} elements; the limit is {max_elements:,}",
                {"input": name, "shape": list(shape), "limit": max_elements},
            )
    return data


class _Progress:
    """The analysis' (done, total, phase) as one monotonic fraction of the whole job, plus detail."""

    def __init__(self, job: JobContext, end_to_end: bool):
        self.job = job
        self.spans = PROGRESS_SPANS if end_to_end else {"statistics": (0.0, 0.85), "ranges": (0.85, 0.99)}
        self.fraction = 0.0

    def __call__(self, done: int, total: int, phase: str) -> None:
        low, high = self.spans.get(phase, (self.fraction, self.fraction))
        share = done / total if total else 1.0
        self.fraction = max(self.fraction, low + (high - low) * min(share, 1.0))
        unit = UNITS.get(phase, "")
        message = f"{phase}: {done} of {total} {unit}".strip() if phase in UNITS else phase
        self.job.progress(
            self.fraction,
            message,
            phase=phase,
            done=done,
            total=total,
            unit=unit,
            percent=round(100 * self.fraction, 1),
        )


def analysis_folder(job: JobContext, params: dict[str, Any]) -> Path:
    """The folder of the analysis a job works on: params["analysis"] names it among its session's."""
    name = str(params["analysis"])
    if job.session_folder is None or not JOB_ID.match(name):
        raise WorkbenchError(f"no analysis folder '{name[:80]}' for this job", code="quant_failed")
    return job.session_folder / "quant" / name


def read_meta(folder: Path) -> dict[str, Any]:
    return json.loads((folder / META).read_text(encoding="utf-8"))


def analysis_inputs(
    folder: Path, meta: dict[str, Any], settings: QuantSettings, max_elements: int
) -> tuple[LoadedModel, CalibrationData, CalibrationData | None]:
    """The model, data and validation data of an analysis, from its folder (QuantError on a mismatch)."""
    model, specs = model_inputs(folder / "model" / meta["model"])
    data = open_data(specs, settings, [folder / p for p in meta["data"]], max_elements)
    validation_paths = [folder / p for p in meta["validation"]]
    no_random = settings.model_copy(update={"random": None})
    validation = open_data(specs, no_random, validation_paths, max_elements) if validation_paths else None
    return model, data, validation


def analysis_job(job: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Job kind "quant": the analysis of a folder that holds its model, data and settings (meta.json)."""
    folder = analysis_folder(job, params)
    meta = read_meta(folder)
    settings = QuantSettings.model_validate(meta["settings"])
    options = engine_options(settings)
    try:
        model, data, validation = analysis_inputs(folder, meta, settings, int(params["max_run_elements"]))
        analysis = analyze(model, data, options, validation, _Progress(job, options.end_to_end), job.cancel)
    except QuantCancelled:
        raise JobCancelled() from None
    except QuantError as err:
        raise WorkbenchError(str(err), code="quant_failed") from None
    analysis.save(folder / ANALYSIS)
    report = build_report(analysis)
    report["model"] = {"session": meta["session"], "version": meta["version"]}
    write_json(report, folder / REPORT)
    rec = report.get("recommendation")
    return {
        "session": meta["session"],
        "version": meta["version"],
        "samples": analysis.samples,
        "synthetic": analysis.synthetic,
        "tensors": len(analysis.tensors),
        "end_to_end": report["end_to_end"],
        "verdict": {label: v["grade"] for label, v in report["verdict"].items()},
        "recommendation": {"int16": rec["int16"], "meets_target": rec["meets_target"], "base": rec["base"]}
        if rec
        else None,
    }


def custom_grid(
    analysis: QuantAnalysis, base: str | None, int16: list[str], overrides: dict[str, str] | None = None
) -> tuple[str, dict]:
    """A base configuration (by default the hybrid's uint8 base) with these tensors in int16 and these
    per-tensor precisions."""
    base = base or analysis.hybrid_base or "uint8/minmax"
    overrides = {**{name: "int16" for name in int16}, **(overrides or {})}
    try:
        return base, analysis.override_precision(base, overrides)
    except QuantError as err:
        raise Invalid("bad_precision", str(err)) from None


def measure_inputs(
    analysis: QuantAnalysis, folder: Path, meta: dict[str, Any], params: dict[str, Any]
) -> tuple[str, dict, CalibrationData]:
    """A measurement's base, per-tensor grid and data (its analysis' validation data, else its calibration
    data), from its parameters {"base", "int16", "overrides", "max_run_elements"}."""
    base, grid = custom_grid(analysis, params["base"], params["int16"], params["overrides"])
    settings = QuantSettings.model_validate(meta["settings"])
    paths = [folder / p for p in (meta["validation"] or meta["data"])]
    data = open_data(input_specs(analysis.model), settings, paths, int(params["max_run_elements"]))
    return base, grid, data


def measure_job(job: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Job kind "quant-measure": a per-tensor precision measured end to end on a finished analysis' data."""
    folder = analysis_folder(job, params)
    meta = read_meta(folder)

    def progress(done: int, total: int, phase: str) -> None:
        job.progress(
            done / total if total else 1.0,
            f"measuring: {done} of {total} samples",
            phase=phase,
            done=done,
            total=total,
            unit="samples",
            percent=round(100 * done / total, 1) if total else 100,
        )

    try:
        analysis = load_analysis(folder / ANALYSIS, folder / "model" / meta["model"])
        base, grid, data = measure_inputs(analysis, folder, meta, params)
        errors = analysis.measure(grid, data, progress, job.cancel)
    except QuantCancelled:
        raise JobCancelled() from None
    except QuantError as err:
        raise WorkbenchError(str(err), code="quant_failed") from None
    high = analysis.toolkit.tier("int16").activation
    return {
        "session": meta["session"],
        "version": meta["version"],
        "analysis": meta["job_id"],
        "base": base,
        "int16": sorted(name for name, aq in grid.items() if aq.quantizer == high),
        "samples": data.num_samples,
        "end_to_end": {"custom": {o: e.to_json() for o, e in errors.items()}},
    }
