"""Quantization analysis over REST: a background job on the session's current model, and its results.

    POST /api/sessions/{sid}/quant                       settings + calibration files -> 202 {job_id, version}
    GET  /api/sessions/{sid}/quant                       the session's analyses, each with its model version
    GET  /api/sessions/{sid}/quant/{job}/report          the onnx-workbench/quant-report JSON (thinned histograms)
    GET  /api/sessions/{sid}/quant/{job}/histogram/{t}   one tensor: full histogram, ranges, predicted SQNR
    GET  /api/sessions/{sid}/quant/{job}/qdq             QDQ model of a configuration or of an int16 list
    GET  /api/sessions/{sid}/quant/{job}/table           quantization table of the same
    POST /api/sessions/{sid}/quant/{job}/measure         {"int16": [...]} -> 202, a job measuring that precision

Progress, cancelling and server-sent events are the job routes' (/api/jobs/{id}). Everything an
analysis needs and produces lives in `sessions/<sid>/quant/<folder>/`: the model as it was when the
analysis was asked for (results name that version, so a later edit never mixes versions), the
calibration files, the pickled analysis and the report. Any worker process can serve them.
"""
from __future__ import annotations

import json
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.background import BackgroundTask

from ..graph import WorkbenchError
from ..graph.guard import element_count
from ..quant import (CONFIGS, HYBRID, ImagePreprocess, QuantAnalysis, QuantCancelled, QuantError, QuantOptions,
                     analyze, build_report, load_analysis, model_inputs, open_calibration_data, quant_table,
                     tensor_report, write_json)
from ..quant.analysis import quantizable_points
from ..quant.calibration import CalibrationData
from ..quant.verdict import Thresholds
from ..quant.export import acuity_quantize, rknn_cfg
from ..quant.model import LoadedModel, input_specs
from .downloads import content_disposition, file_response, open_files
from .schemas import MAX_SEED, file_field, multipart_body
from .errors import Conflict, Invalid, NotFound, ServiceError, TooLarge, UnsupportedMedia
from .jobs import JOB_ID, JobCancelled, JobContext
from .middleware import streams_body
from .routes_sessions import ERRORS, store_of
from .session_store import new_id
from .uploads import Upload, receive_multipart, unpack_zip

router = APIRouter(prefix="/api/sessions", tags=["quantization"], responses=ERRORS)

ANALYSIS = "analysis.pickle"
REPORT = "report.json"
META = "meta.json"
LOADED_ANALYSES = 2  # per process: histogram requests of the page hit the same analysis in a row
#: Each phase's share of the job, from its measured share of the default analysis on real detectors.
PROGRESS_SPANS = {"statistics": (0.0, 0.15), "ranges": (0.15, 0.18), "end_to_end": (0.18, 0.38),
                  "error_map": (0.38, 0.42), "sensitivity": (0.42, 0.72),
                  "hybrid": (0.72, 0.9), "recommendation": (0.9, 0.99)}
UNITS = {"statistics": "samples", "ranges": "tensors", "end_to_end": "samples", "error_map": "samples",
         "sensitivity": "points", "hybrid": "QDQ runs", "recommendation": "samples"}
MAX_HISTOGRAM_BINS = 8192
CURVE_POINT = "a measured point of the precision curve (its k): its int16 points over the hybrid's base"

QUANT_BODY = multipart_body({
    "data": file_field("calibration data: one .npz (arrays keyed by input name, samples on the first axis) or "
                       ".npy, or image files, or a .zip of images", many=True),
    "validation": file_field("separate data for the end-to-end measurements (same kinds)", many=True),
    "settings": {"type": "string", "description": "JSON object of QuantSettings; any of its fields may also come "
                                                  "as a form field of its own"},
})


class Preprocess(BaseModel):
    """Image preprocessing, Acuity style: (pixel - mean) * scale, or / std."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    size: list[Annotated[int, Field(ge=1)]] | None = Field(default=None, description="[H, W] for an input whose "
                                                           "spatial dims are dynamic")
    channel_order: Literal["rgb", "bgr"] = "rgb"
    mean: list[float] | None = None
    scale: list[float] | None = None
    std: list[float] | None = None
    layout: Literal["nchw", "nhwc"] | None = None


class QuantSettings(BaseModel):
    """What the analysis is asked to do; ``target`` is the toolkit simulated (default Acuity)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # NaN would end up in the report JSON

    target: Literal["acuity", "rknn", "onnxruntime"] = Field(
        default="acuity", description="toolkit whose quantizers, int16 and fused layers are simulated")

    random: int | None = Field(default=None, ge=1, le=10_000, description="N random batches instead of files "
                               "(the report says synthetic)")
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    percentile: float = Field(default=99.99, gt=50, le=100)
    kl_method: Literal["tensorrt", "onnxruntime"] = "tensorrt"
    per_channel: bool = Field(default=False, description="onnxruntime target: per-channel weight scales")
    int16_weights: bool = Field(default=False, description="onnxruntime target: int16 layers get int16 weights too "
                                "(W16A16, as Acuity's and RKNN's int16 layers always do); default A16W8")
    end_to_end: bool = Field(default=True, description="measure uint8/int16 QDQ models and search the hybrid")
    target_margin_db: float = 3.0
    target_sqnr_db: float | None = None
    good_cosine: float = Field(default=0.99, ge=-1, le=1, description="verdict: an output is good with at least "
                               "this cosine and good_sqnr_db")
    good_sqnr_db: float = Field(default=20.0, description="verdict: an output is good with at least this SQNR")
    marginal_cosine: float = Field(default=0.95, ge=-1, le=1, description="verdict: marginal from this cosine, "
                                   "poor below")
    hybrid_base: Literal["uint8/minmax", "uint8/kl"] | None = None
    search_samples: int = Field(default=4, ge=1, le=10_000, description="samples of the precision curve and of "
                                "the weights-only / activations-only runs")
    sensitivity_samples: int = Field(default=1, ge=1, le=1_000, description="samples of the error map and of the "
                                     "sensitivity ranking (one run per point each)")
    shapes: dict[str, list[int]] | None = Field(default=None, description="shapes of inputs with dynamic dims "
                                                "(random data, images)")
    preprocess: Preprocess | None = None
    # the page's choices of what to show; kept with the result, the analysis computes every one
    quantizer: str | None = None
    qtype: str | None = None
    algorithms: list[str] | None = None

    @field_validator("shapes")
    @classmethod
    def _positive(cls, shapes: dict[str, list[int]] | None) -> dict[str, list[int]] | None:
        if shapes and any(d < 1 for dims in shapes.values() for d in dims):
            raise ValueError("dims must be positive")
        return shapes


PREPROCESS_FIELDS = set(Preprocess.model_fields)
LIST_FIELDS = {"size", "mean", "scale", "std", "algorithms"}


def _form_value(name: str, text: str) -> Any:
    """A form field as the settings model wants it: JSON where it parses, lists from "1,2,3" or "640x640"."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        if name not in LIST_FIELDS:
            return text
        value = [part for part in text.replace(" ", ",").split(",") if part]
        if name == "size" and len(value) == 1:
            value = value[0].lower().split("x")
    return [value] if name in LIST_FIELDS and not isinstance(value, list) else value


def parse_settings(fields: dict[str, str]) -> QuantSettings:
    """Settings from a JSON 'settings' field, overridden by individual form fields."""
    raw: dict[str, Any] = {}
    if fields.get("settings"):
        try:
            raw = json.loads(fields["settings"])
        except json.JSONDecodeError as err:
            raise Invalid("bad_settings", f"'settings' is not valid JSON: {err}") from None
        if not isinstance(raw, dict):
            raise Invalid("bad_settings", "'settings' must be a JSON object")
    for name, text in fields.items():
        if name == "settings":
            continue
        value = _form_value(name, text)
        if name in PREPROCESS_FIELDS:
            raw.setdefault("preprocess", {})
            if isinstance(raw["preprocess"], dict):
                raw["preprocess"][name] = value
        else:
            raw[name] = value
    try:
        return QuantSettings.model_validate(raw)
    except ValidationError as err:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise Invalid("bad_settings", "invalid quantization settings: " + "; ".join(problems[:5]),
                       {"problems": problems[:20]}) from None


def _options(settings: QuantSettings) -> QuantOptions:
    try:
        return QuantOptions(target=settings.target, percentile=settings.percentile, kl_method=settings.kl_method,
                            per_channel_weights=settings.per_channel, int16_weights=settings.int16_weights,
                            end_to_end=settings.end_to_end,
                            target_margin_db=settings.target_margin_db, target_sqnr_db=settings.target_sqnr_db,
                            hybrid_base=settings.hybrid_base, search_samples=settings.search_samples,
                            sensitivity_samples=settings.sensitivity_samples,
                            seed=settings.seed, thresholds=Thresholds(settings.good_cosine, settings.good_sqnr_db,
                                                                      settings.marginal_cosine))
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
    preprocess = ImagePreprocess(mean=tuple(pre.mean) if pre.mean else (0.0,),
                                 scale=tuple(pre.scale) if pre.scale else None,
                                 std=tuple(pre.std) if pre.std else None,
                                 channel_order=pre.channel_order, layout=pre.layout)
    return preprocess, shapes


def _data_paths(upload: Upload, field: str) -> list[Path]:
    """The uploaded files of a field; a zip of images is unpacked (within the upload's budget) into a folder."""
    paths: list[Path] = []
    for item in (f for f in upload.files if f.field == field):
        if item.path.suffix.lower() == ".zip":
            target = item.path.with_name(item.path.name + ".images")
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
            raise TooLarge("too_large", f"input '{name}': a batch of shape {list(shape)} has {count:,} elements; "
                           f"the limit is {max_elements:,}", {"input": name, "shape": list(shape), "limit": max_elements})
    return data


# -- where results are -------------------------------------------------------------------------------
def _quant_root(request: Request, session_id: str) -> Path:
    return store_of(request).session_dir(session_id) / "quant"


def _folder_of(request: Request, session_id: str, job_id: str) -> Path:
    """The folder of an analysis job of this session (404 for another session's or an unknown job)."""
    pointer = _quant_root(request, session_id) / "jobs" / job_id
    if not JOB_ID.match(job_id) or not pointer.is_file():  # checked before the name reaches the filesystem
        raise NotFound("unknown_analysis", "this session has no quantization analysis with that job id",
                       {"job": job_id[:80]})
    return pointer.parent.parent / pointer.read_text(encoding="utf-8")


def _meta(folder: Path) -> dict[str, Any]:
    return json.loads((folder / META).read_text(encoding="utf-8"))


def _check_session(request: Request, session_id: str) -> None:
    """404 for a session that does not exist (or expired), before anything else is looked at."""
    with store_of(request).open(session_id):
        pass


_loaded: OrderedDict[Path, QuantAnalysis] = OrderedDict()
_loaded_lock = threading.Lock()


def _analysis(request: Request, session_id: str, job_id: str) -> tuple[QuantAnalysis, dict[str, Any]]:
    """The finished analysis of a job (409 while it runs or when it did not succeed), cached per process."""
    _check_session(request, session_id)
    folder = _folder_of(request, session_id, job_id)
    meta = _meta(folder)
    with _loaded_lock:
        if folder in _loaded:
            _loaded.move_to_end(folder)
            return _loaded[folder], meta
    if not (folder / ANALYSIS).exists():
        state = request.app.state.jobs.get(meta["job_id"])
        raise Conflict("analysis_not_ready", f"the analysis is {state['state']}; its results exist once it "
                       "has succeeded", {"state": state["state"]})
    try:
        analysis = load_analysis(folder / ANALYSIS, folder / "model" / meta["model"])
    except QuantError as err:
        raise Conflict("analysis_unreadable", str(err)) from None
    with _loaded_lock:
        _loaded[folder] = analysis
        while len(_loaded) > LOADED_ANALYSES:
            _loaded.popitem(last=False)
    return analysis, meta


# -- the jobs ----------------------------------------------------------------------------------------
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
        self.job.progress(self.fraction, message, phase=phase, done=done, total=total, unit=unit,
                          percent=round(100 * self.fraction, 1))


def _run_analysis(folder: Path, model: LoadedModel, data: CalibrationData, validation: CalibrationData | None,
                  options: QuantOptions, meta: dict[str, Any]) -> Callable[[JobContext], dict[str, Any]]:
    def work(job: JobContext) -> dict[str, Any]:
        try:
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
        return {"session": meta["session"], "version": meta["version"], "samples": analysis.samples,
                "synthetic": analysis.synthetic, "tensors": len(analysis.tensors),
                "end_to_end": report["end_to_end"],
                "verdict": {label: v["grade"] for label, v in report["verdict"].items()},
                "recommendation": {"int16": rec["int16"], "meets_target": rec["meets_target"],
                                   "base": rec["base"]} if rec else None}

    return work


def _run_measure(analysis: QuantAnalysis, meta: dict[str, Any], grid: dict, data: CalibrationData,
                 base: str, int16: list[str]) -> Callable[[JobContext], dict[str, Any]]:
    def work(job: JobContext) -> dict[str, Any]:
        def progress(done: int, total: int, phase: str) -> None:
            job.progress(done / total if total else 1.0, f"measuring: {done} of {total} samples", phase=phase,
                         done=done, total=total, unit="samples", percent=round(100 * done / total, 1) if total else 100)

        try:
            errors = analysis.measure(grid, data, progress, job.cancel)
        except QuantCancelled:
            raise JobCancelled() from None
        except QuantError as err:
            raise WorkbenchError(str(err), code="quant_failed") from None
        return {"session": meta["session"], "version": meta["version"], "analysis": meta["job_id"], "base": base,
                "int16": int16, "samples": data.num_samples,
                "end_to_end": {"custom": {o: e.to_json() for o, e in errors.items()}}}

    return work


# -- routes ------------------------------------------------------------------------------------------
@router.post("/{session_id}/quant", status_code=202, openapi_extra=QUANT_BODY,
             summary="Start a quantization analysis of the session's current model (background job)")
@streams_body("multipart/form-data")
async def start_analysis(session_id: str, request: Request) -> dict[str, Any]:
    store = store_of(request)
    settings_ = request.app.state.settings
    await run_in_threadpool(_check_session, request, session_id)
    staging = await run_in_threadpool(store.staging_dir)
    try:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            upload = await receive_multipart(request, staging / "data", settings_.max_upload_bytes,
                                             {"data", "validation"})
        elif content_type.startswith("application/x-www-form-urlencoded"):
            form = await request.form()
            upload = Upload(fields={k: v for k, v in form.items() if isinstance(v, str)})
        else:
            raise UnsupportedMedia("unsupported_media_type", "send the settings and calibration files as "
                           "multipart/form-data")
        return await run_in_threadpool(_submit_analysis, request, session_id, staging, upload)
    finally:
        await run_in_threadpool(shutil.rmtree, staging, True)


def _submit_analysis(request: Request, session_id: str, staging: Path, upload: Upload) -> dict[str, Any]:
    settings = parse_settings(upload.fields)
    options = _options(settings)
    if any(f.field == "data" for f in upload.files) and settings.random is not None:
        raise Invalid("bad_settings", "give either calibration files or random = N, not both")
    if not any(f.field == "data" for f in upload.files) and settings.random is None:
        raise Invalid("missing_data", "no calibration data: upload files in 'data' (.npz, .npy, images or "
                       "a .zip of images) or set random = N for synthetic data")
    root = _quant_root(request, session_id)
    (root / "jobs").mkdir(parents=True, exist_ok=True)
    folder = root / new_id()
    (staging / "data").mkdir(exist_ok=True)
    (staging / "data").rename(folder)
    for item in upload.files:
        item.path = folder / item.path.relative_to(staging / "data")
    try:
        data_paths = _data_paths(upload, "data")
        validation_paths = _data_paths(upload, "validation")
        with store_of(request).open(session_id) as handle:
            version = handle.doc.version
            model_path = handle.export_to(folder / "model")
        try:
            model, specs = model_inputs(model_path)
            quantizable_points(model.proto, settings.target)
            max_elements = request.app.state.settings.max_run_elements
            data = open_data(specs, settings, data_paths, max_elements)
            validation = open_data(specs, settings.model_copy(update={"random": None}), validation_paths,
                                   max_elements) if validation_paths else None
        except QuantError as err:
            raise Invalid("bad_quant_input", str(err)) from None
        meta = {"session": session_id, "version": version, "model": model_path.name, "kind": "quant",
                "created": time.time(), "settings": settings.model_dump(exclude_none=True),
                "data": [str(p.relative_to(folder)) for p in data_paths],
                "validation": [str(p.relative_to(folder)) for p in validation_paths]}
        job_id = request.app.state.jobs.submit(_run_analysis(folder, model, data, validation, options, meta),
                                               session_id=session_id, kind="quant")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    meta["job_id"] = job_id
    (folder / META).write_text(json.dumps(meta), encoding="utf-8")
    (root / "jobs" / job_id).write_text(folder.name, encoding="utf-8")
    return {"job_id": job_id, "session": session_id, "version": version, "state": "queued",
            "links": {"job": f"/api/jobs/{job_id}", "results": f"/api/sessions/{session_id}/quant/{job_id}"}}


@router.get("/{session_id}/quant", summary="The session's quantization analyses, newest first, each with the "
            "model version it ran on")
def list_analyses(session_id: str, request: Request) -> dict[str, Any]:
    with store_of(request).open(session_id) as handle:
        current = handle.doc.version
    root = _quant_root(request, session_id)
    found = []
    for pointer in sorted((root / "jobs").glob("*")) if (root / "jobs").is_dir() else []:
        try:
            meta = _meta(root / pointer.read_text(encoding="utf-8"))
            state = request.app.state.jobs.get(pointer.name)
        except (OSError, ValueError, ServiceError):
            continue  # a job being created or removed
        found.append({"job_id": pointer.name, "version": meta["version"], "current": meta["version"] == current,
                      "state": state["state"], "created": meta["created"], "settings": meta["settings"]})
    found.sort(key=lambda a: -a["created"])
    return {"version": current, "analyses": found}


def _report_file(request: Request, session_id: str, job_id: str) -> tuple[Path, dict[str, Any]]:
    _check_session(request, session_id)
    folder = _folder_of(request, session_id, job_id)
    meta = _meta(folder)
    if not (folder / REPORT).exists():
        state = request.app.state.jobs.get(job_id)
        raise Conflict("analysis_not_ready", f"the analysis is {state['state']}; its results exist once it "
                       "has succeeded", {"state": state["state"]})
    return folder / REPORT, meta


@router.get("/{session_id}/quant/{job_id}/report", summary="The analysis report (onnx-workbench/quant-report)",
            responses={200: {"content": {"application/json": {}}}})
def get_report(session_id: str, job_id: str, request: Request, histograms: bool = Query(default=True)) -> Response:
    path, meta = _report_file(request, session_id, job_id)
    headers = {"X-Model-Version": str(meta["version"])}
    if histograms:
        return FileResponse(path, media_type="application/json", headers=headers)
    report = json.loads(path.read_text(encoding="utf-8"))
    for entry in report["tensors"].values():
        entry.pop("histogram", None)
    return Response(json.dumps(report, allow_nan=False), media_type="application/json", headers=headers)


@router.get("/{session_id}/quant/{job_id}/histogram/{tensor:path}",
            summary="One tensor of the analysis: histogram, exact min/max, every range, predicted SQNR")
def get_histogram(session_id: str, job_id: str, tensor: str, request: Request,
                  bins: int | None = Query(default=None, ge=2, le=MAX_HISTOGRAM_BINS,
                                           description="resample onto this many equal bins over [min, max]")
                  ) -> dict[str, Any]:
    analysis, meta = _analysis(request, session_id, job_id)
    if tensor not in analysis.tensors:
        raise NotFound("unknown_tensor", f"'{tensor}' is not a quantization point of this analysis",
                       {"tensor": tensor[:200]})
    entry = tensor_report(analysis, tensor, True, bins)
    hybrid = analysis.hybrid.int16 if analysis.hybrid is not None else []
    return {"tensor": tensor, "version": meta["version"], "int16_in_hybrid": tensor in hybrid, **entry}


class MeasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    int16: list[str] = Field(default_factory=list, description="tensors in int16 (Min-Max); the others stay in the "
                             "base configuration")
    base: Literal["uint8/minmax", "uint8/kl", "hybrid"] | None = Field(
        default=None, description="the configuration the others keep: the hybrid's uint8 base by default, and "
        "'hybrid' keeps its recommended int16 tensors too")
    overrides: dict[str, str] = Field(default_factory=dict, description="per tensor: uint8, int16 or "
                                      "dtype/algorithm (minmax, kl, percentile, mse)")


def _custom_grid(analysis: QuantAnalysis, request_: MeasureRequest) -> tuple[str, dict]:
    base = request_.base or analysis.hybrid_base or "uint8/minmax"
    overrides = {**{name: "int16" for name in request_.int16}, **request_.overrides}
    try:
        return base, analysis.override_precision(base, overrides)
    except QuantError as err:
        raise Invalid("bad_precision", str(err)) from None


def _configuration(analysis: QuantAnalysis, config: str, int16: str | None, k: int | None = None
                   ) -> tuple[str, dict]:
    """The per-tensor grid of ?config=...[&int16=[...]] (an int16 list replaces the hybrid's own), or of
    ?k=K, the precision curve's point K (its int16 points over the hybrid's base)."""
    if config not in (*CONFIGS, HYBRID):
        raise Invalid("bad_config", f"config must be one of {[*CONFIGS, HYBRID]}", {"config": config})
    if k is not None:
        if int16 is not None:
            raise Invalid("bad_precision", "give either k (a point of the curve) or int16, not both")
        try:
            return f"curve-k{k}", analysis.curve_precision(k)
        except QuantError as err:
            raise NotFound("no_curve_point", str(err), {"k": k}) from None
    if int16 is None:
        try:
            return config, analysis.precision(config)
        except QuantError as err:
            raise Conflict("no_hybrid", str(err)) from None
    try:
        names = json.loads(int16)
    except json.JSONDecodeError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise Invalid("bad_precision", "int16 must be a JSON list of tensor names")
    base = (analysis.hybrid_base or "uint8/minmax") if config == HYBRID else config
    return _custom_grid(analysis, MeasureRequest(int16=names, base=base))


@router.get("/{session_id}/quant/{job_id}/qdq", summary="The QDQ model of a configuration, or of a base with the "
            "given tensors in int16", responses={200: {"content": {"application/octet-stream": {}}}})
def get_qdq(session_id: str, job_id: str, request: Request, config: str = Query(default=HYBRID),
            int16: str | None = Query(default=None, description="JSON list of tensor names in int16"),
            k: int | None = Query(default=None, ge=0, le=2**31, description=CURVE_POINT)) -> Response:
    analysis, meta = _analysis(request, session_id, job_id)
    label, grid = _configuration(analysis, config, int16, k)
    name = f"model.{label.replace('/', '-')}{'-custom' if int16 is not None else ''}.qdq.onnx"
    # written into the job's folder, then streamed: a model with external data comes as a zip with its .data
    staging = _folder_of(request, session_id, job_id) / f"export-{new_id()}"
    staging.mkdir()
    try:
        paths = analysis.export_qdq(staging / name, activations=grid)
        files = open_files(paths)
    except QuantError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise TooLarge("too_large", str(err)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    response = file_response(files, name.removesuffix(".onnx"),
                             BackgroundTask(shutil.rmtree, staging, ignore_errors=True))
    response.headers["X-Model-Version"] = str(meta["version"])
    return response


@router.get("/{session_id}/quant/{job_id}/table", summary="The quantization table (onnx-workbench/quant-table) of "
            "a configuration, or of a base with the given tensors in int16")
def get_table(session_id: str, job_id: str, request: Request, config: str = Query(default=HYBRID),
              int16: str | None = Query(default=None, description="JSON list of tensor names in int16"),
            k: int | None = Query(default=None, ge=0, le=2**31, description=CURVE_POINT)) -> Response:
    analysis, meta = _analysis(request, session_id, job_id)
    label, grid = _configuration(analysis, config, int16, k)
    table = quant_table(analysis, label, grid)
    table["model"] = {"session": session_id, "version": meta["version"]}
    return Response(json.dumps(table, allow_nan=False), media_type="application/json",
                    headers={"Content-Disposition": content_disposition("quant-table.json"),
                             "X-Model-Version": str(meta["version"])})


#: The toolkit files: target -> (writer, file name)
TOOLKIT_FILES: dict[str, tuple[Callable[..., str], str]] = {"acuity": (acuity_quantize, "model.quantize"),
                                                           "rknn": (rknn_cfg, "model.quantization.cfg")}


@router.get("/{session_id}/quant/{job_id}/toolkit-file", summary="The plan in the target toolkit's own file "
            "(Acuity .quantize, RKNN .quantization.cfg) for a configuration, or a base with the given tensors in "
            "int16", responses={200: {"content": {"application/yaml": {}}}})
def get_toolkit_file(session_id: str, job_id: str, request: Request, config: str = Query(default=HYBRID),
                     int16: str | None = Query(default=None, description="JSON list of tensor names in int16"),
                     k: int | None = Query(default=None, ge=0, le=2**31, description=CURVE_POINT)) -> Response:
    analysis, meta = _analysis(request, session_id, job_id)
    target = analysis.toolkit.name
    if target not in TOOLKIT_FILES:
        raise Conflict("no_toolkit_file", f"the analysis simulated {target}, which has no quantization file of "
                       f"its own: analyse with target {' or '.join(TOOLKIT_FILES)}")
    label, grid = _configuration(analysis, config, int16, k)
    write, name = TOOLKIT_FILES[target]
    return Response(write(analysis, label, grid), media_type="application/yaml",
                    headers={"Content-Disposition": content_disposition(name),
                             "X-Model-Version": str(meta["version"])})


@router.post("/{session_id}/quant/{job_id}/measure", status_code=202,
             summary="Measure a per-tensor precision end to end (background job); its result holds the output "
                     "SQNR and cosine under end_to_end.custom")
def start_measure(session_id: str, job_id: str, body: MeasureRequest, request: Request) -> dict[str, Any]:
    analysis, meta = _analysis(request, session_id, job_id)
    base, grid = _custom_grid(analysis, body)
    folder = _folder_of(request, session_id, job_id)
    settings = QuantSettings.model_validate(meta["settings"])
    paths = [folder / p for p in (meta["validation"] or meta["data"])]
    try:
        data = open_data(input_specs(analysis.model), settings, paths, request.app.state.settings.max_run_elements)
    except QuantError as err:
        raise Invalid("bad_quant_input", str(err)) from None
    high = analysis.toolkit.tier("int16").activation
    int16 = sorted(name for name, aq in grid.items() if aq.quantizer == high)
    measure_id = request.app.state.jobs.submit(_run_measure(analysis, meta, grid, data, base, int16),
                                               session_id=session_id, kind="quant-measure")
    return {"job_id": measure_id, "session": session_id, "version": meta["version"], "state": "queued",
            "links": {"job": f"/api/jobs/{measure_id}"}}
