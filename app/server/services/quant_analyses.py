"""The quantization analyses of sessions: where each lives, starting one, and reading its results.

Everything an analysis needs and produces lives in `sessions/<sid>/quant/<folder>/`: the model as it
was when the analysis was asked for (results name that version, so a later edit never mixes versions),
the calibration files, the pickled analysis and the report; `quant/jobs/<job id>` names the folder of
a job. Any worker process can serve them; each process keeps the last analyses it loaded.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from ...quant import CONFIGS, HYBRID, QuantAnalysis, QuantError, load_analysis, quant_table
from ...quant.analysis import quantizable_points
from ...quant.export import acuity_quantize, rknn_cfg
from ..downloads import open_files
from ..errors import Conflict, Invalid, NotFound, ServiceError, TooLarge
from ..ids import new_id
from ..jobs import JOB_ID, JobRunner, write_state
from ..schemas.quant import MeasureRequest, QuantSettings, parse_settings
from ..session_store import SessionStore
from ..uploads import Upload
from .quant_jobs import (
    ANALYSIS,
    META,
    REPORT,
    analysis_inputs,
    custom_grid,
    data_paths,
    engine_options,
    measure_inputs,
    read_meta,
)

LOADED_ANALYSES = 2  # per process: histogram requests of the page hit the same analysis in a row
#: The toolkit files: target -> (writer, file name)
TOOLKIT_FILES: dict[str, tuple[Callable[..., str], str]] = {
    "acuity": (acuity_quantize, "model.quantize"),
    "rknn": (rknn_cfg, "model.quantization.cfg"),
}


class QuantAnalyses:
    """The analyses of the store's sessions, run by the job runner, with the settings' element limit."""

    def __init__(self, store: SessionStore, jobs: JobRunner, max_run_elements: int):
        self.store = store
        self.jobs = jobs
        self.max_run_elements = max_run_elements
        self._loaded: OrderedDict[Path, QuantAnalysis] = OrderedDict()
        self._lock = threading.Lock()

    # -- where results are ---------------------------------------------------------------------------
    def root(self, session_id: str) -> Path:
        return self.store.session_dir(session_id) / "quant"

    def folder(self, session_id: str, job_id: str) -> Path:
        """The folder of an analysis job of this session (404 for another session's or an unknown job)."""
        pointer = self.root(session_id) / "jobs" / job_id
        if not JOB_ID.match(job_id) or not pointer.is_file():  # checked before the name reaches the filesystem
            raise NotFound(
                "unknown_analysis", "this session has no quantization analysis with that job id", {"job": job_id[:80]}
            )
        return pointer.parent.parent / pointer.read_text(encoding="utf-8")

    def check_session(self, session_id: str) -> None:
        """404 for a session that does not exist (or expired), before anything else is looked at; the model is
        not loaded for it."""
        self.store.touch(session_id)

    def analysis(self, session_id: str, job_id: str) -> tuple[QuantAnalysis, dict[str, Any]]:
        """The finished analysis of a job (409 while it runs or when it did not succeed), cached."""
        self.check_session(session_id)
        folder = self.folder(session_id, job_id)
        meta = read_meta(folder)
        with self._lock:
            if folder in self._loaded:
                self._loaded.move_to_end(folder)
                return self._loaded[folder], meta
        if not (folder / ANALYSIS).exists():
            raise self._not_ready(meta["job_id"])
        try:
            analysis = load_analysis(folder / ANALYSIS, folder / "model" / meta["model"])
        except QuantError as err:
            raise Conflict("analysis_unreadable", str(err)) from None
        with self._lock:
            self._loaded[folder] = analysis
            while len(self._loaded) > LOADED_ANALYSES:
                self._loaded.popitem(last=False)
        return analysis, meta

    def report_file(self, session_id: str, job_id: str) -> tuple[Path, dict[str, Any]]:
        """The report of a finished analysis and the analysis' meta (409 until it has succeeded)."""
        self.check_session(session_id)
        folder = self.folder(session_id, job_id)
        meta = read_meta(folder)
        if not (folder / REPORT).exists():
            raise self._not_ready(job_id)
        return folder / REPORT, meta

    def _not_ready(self, job_id: str) -> Conflict:
        state = self.jobs.get(job_id)
        return Conflict(
            "analysis_not_ready",
            f"the analysis is {state['state']}; its results exist once it has succeeded",
            {"state": state["state"]},
        )

    def listing(self, session_id: str) -> dict[str, Any]:
        """The session's analyses, newest first, each with the model version it ran on."""
        with self.store.open(session_id) as handle:
            current = handle.doc.version
        root = self.root(session_id)
        found = []
        for pointer in sorted((root / "jobs").glob("*")) if (root / "jobs").is_dir() else []:
            try:
                meta = read_meta(root / pointer.read_text(encoding="utf-8"))
                state = self.jobs.get(pointer.name)
            except (OSError, ValueError, ServiceError):
                continue  # a job being created or removed
            found.append(
                {
                    "job_id": pointer.name,
                    "version": meta["version"],
                    "current": meta["version"] == current,
                    "state": state["state"],
                    "created": meta["created"],
                    "settings": meta["settings"],
                }
            )
        found.sort(key=lambda a: -a["created"])
        return {"version": current, "analyses": found}

    # -- starting jobs -------------------------------------------------------------------------------
    def submit(self, session_id: str, staging: Path, upload: Upload) -> dict[str, Any]:
        """Start an analysis of the session's current model on an upload received into `staging`/data,
        which becomes the analysis' folder."""
        settings = parse_settings(upload.fields)
        engine_options(settings)  # 422 for settings the engine refuses, before anything is stored
        has_files = any(f.field == "data" for f in upload.files)
        if has_files and settings.random is not None:
            raise Invalid("bad_settings", "give either calibration files or random = N, not both")
        if not has_files and settings.random is None:
            raise Invalid(
                "missing_data",
                "no calibration data: upload files in 'data' (.npz, .npy, images or "
                "a .zip of images) or set random = N for synthetic data",
            )
        root = self.root(session_id)
        (root / "jobs").mkdir(parents=True, exist_ok=True)
        folder = root / new_id()
        (staging / "data").mkdir(exist_ok=True)
        (staging / "data").rename(folder)
        for item in upload.files:
            item.path = folder / item.path.relative_to(staging / "data")
        try:
            meta = self._prepare(session_id, folder, upload, settings)
            write_state(folder / META, meta)  # before the job starts: it reads its settings there
            job_id = self.jobs.start(
                "quant", {"analysis": folder.name, "max_run_elements": self.max_run_elements}, session_id=session_id
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        meta["job_id"] = job_id
        write_state(folder / META, meta)  # replaced whole: a worker reading it sees the old or the new one
        (root / "jobs" / job_id).write_text(folder.name, encoding="utf-8")
        return {
            "job_id": job_id,
            "session": session_id,
            "version": meta["version"],
            "state": "queued",
            "links": {"job": f"/api/jobs/{job_id}", "results": f"/api/sessions/{session_id}/quant/{job_id}"},
        }

    def _prepare(self, session_id: str, folder: Path, upload: Upload, settings: QuantSettings) -> dict[str, Any]:
        """The analysis' meta, once its model, data and validation data open as the job will open them."""
        calibration = data_paths(upload, "data")
        validation_paths = data_paths(upload, "validation")
        with self.store.open(session_id) as handle:
            version = handle.doc.version
            model_path = handle.export_to(folder / "model")
        meta = {
            "session": session_id,
            "version": version,
            "model": model_path.name,
            "kind": "quant",
            "created": time.time(),
            "settings": settings.model_dump(exclude_none=True),
            "data": [str(p.relative_to(folder)) for p in calibration],
            "validation": [str(p.relative_to(folder)) for p in validation_paths],
        }
        try:
            model, _, _ = analysis_inputs(folder, meta, settings, self.max_run_elements)
            quantizable_points(model.proto, settings.target)
        except QuantError as err:
            raise Invalid("bad_quant_input", str(err)) from None
        return meta

    def measure(self, session_id: str, job_id: str, body: MeasureRequest) -> dict[str, Any]:
        """Start a job measuring a per-tensor precision end to end on the analysis' own data."""
        analysis, meta = self.analysis(session_id, job_id)
        folder = self.folder(session_id, job_id)
        params = {
            "analysis": folder.name,
            "base": body.base,
            "int16": body.int16,
            "overrides": body.overrides,
            "max_run_elements": self.max_run_elements,
        }
        try:
            measure_inputs(analysis, folder, meta, params)  # refused here, not in the job
        except QuantError as err:
            raise Invalid("bad_quant_input", str(err)) from None
        measure_id = self.jobs.start("quant-measure", params, session_id=session_id)
        return {
            "job_id": measure_id,
            "session": session_id,
            "version": meta["version"],
            "state": "queued",
            "links": {"job": f"/api/jobs/{measure_id}"},
        }

    # -- results -------------------------------------------------------------------------------------
    def export_qdq(
        self, session_id: str, job_id: str, config: str, int16: str | None, k: int | None
    ) -> tuple[list[tuple[str, BinaryIO, int]], Path, dict[str, Any]]:
        """The QDQ model of a configuration written into a new folder of the job's, which the caller
        removes once it has sent them: its files opened, the folder and the analysis' meta."""
        analysis, meta = self.analysis(session_id, job_id)
        label, grid = configuration(analysis, config, int16, k)
        name = f"model.{label.replace('/', '-')}{'-custom' if int16 is not None else ''}.qdq.onnx"
        # a model with external data comes as a zip with its .data
        staging = self.folder(session_id, job_id) / f"export-{new_id()}"
        staging.mkdir()
        try:
            return open_files(analysis.export_qdq(staging / name, activations=grid)), staging, meta
        except QuantError as err:
            shutil.rmtree(staging, ignore_errors=True)
            raise TooLarge("too_large", str(err)) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def table(
        self, session_id: str, job_id: str, config: str, int16: str | None, k: int | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The quantization table of a configuration, and the analysis' meta."""
        analysis, meta = self.analysis(session_id, job_id)
        label, grid = configuration(analysis, config, int16, k)
        table = quant_table(analysis, label, grid)
        table["model"] = {"session": session_id, "version": meta["version"]}
        return table, meta

    def toolkit_file(
        self, session_id: str, job_id: str, config: str, int16: str | None, k: int | None
    ) -> tuple[str, str, dict[str, Any]]:
        """The plan in the target toolkit's own file: its text, its file name and the analysis' meta."""
        analysis, meta = self.analysis(session_id, job_id)
        target = analysis.toolkit.name
        if target not in TOOLKIT_FILES:
            raise Conflict(
                "no_toolkit_file",
                f"the analysis simulated {target}, which has no quantization file of "
                f"its own: analyse with target {' or '.join(TOOLKIT_FILES)}",
            )
        label, grid = configuration(analysis, config, int16, k)
        write, name = TOOLKIT_FILES[target]
        return write(analysis, label, grid), name, meta


def configuration(analysis: QuantAnalysis, config: str, int16: str | None, k: int | None = None) -> tuple[str, dict]:
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
    if config != HYBRID and CONFIGS[config][0] != "uint8":
        raise Invalid(
            "bad_precision",
            f"an int16 list goes with the hybrid or a uint8 configuration; {config} has all its tensors in int16",
            {"config": config},
        )
    return custom_grid(analysis, None if config == HYBRID else config, names)
