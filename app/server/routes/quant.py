"""Quantization analysis over REST: a background job on the session's current model, and its results.

    POST /api/sessions/{sid}/quant                       settings + calibration files -> 202 {job_id, version}
    GET  /api/sessions/{sid}/quant                       the session's analyses, each with its model version
    GET  /api/sessions/{sid}/quant/{job}/report          the onnx-workbench/quant-report JSON (thinned histograms)
    GET  /api/sessions/{sid}/quant/{job}/histogram/{t}   one tensor: full histogram, ranges, predicted SQNR
    GET  /api/sessions/{sid}/quant/{job}/qdq             QDQ model of a configuration or of an int16 list
    GET  /api/sessions/{sid}/quant/{job}/table           quantization table of the same
    POST /api/sessions/{sid}/quant/{job}/measure         {"int16": [...]} -> 202, a job measuring that precision

Progress, cancelling and server-sent events are the job routes' (/api/jobs/{id}); where analyses live
is app/server/services/quant_analyses.py.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from ...quant import HYBRID, tensor_report
from ..deps import Analyses, AppSettings, Store
from ..downloads import content_disposition, file_response
from ..errors import NotFound, UnsupportedMedia
from ..middleware import streams_body
from ..schemas.common import ERRORS
from ..schemas.quant import (
    QUANT_BODY,
    AnalysisList,
    JobStarted,
    MeasureRequest,
    QuantReport,
    QuantTable,
    TensorHistogram,
)
from ..uploads import Upload, receive_multipart

router = APIRouter(prefix="/api/sessions", tags=["quantization"], responses=ERRORS)

MAX_HISTOGRAM_BINS = 8192
CURVE_POINT = "a measured point of the precision curve (its k): its int16 points over the hybrid's base"
CONFIG = Query(default=HYBRID)
INT16 = Query(default=None, description="JSON list of tensor names in int16")
K = Query(default=None, ge=0, le=2**31, description=CURVE_POINT)


@router.post(
    "/{session_id}/quant",
    status_code=202,
    openapi_extra=QUANT_BODY,
    response_model=JobStarted,
    summary="Start a quantization analysis of the session's current model (background job)",
)
@streams_body("multipart/form-data")
async def start_analysis(
    session_id: str, request: Request, store: Store, analyses: Analyses, settings: AppSettings
) -> dict[str, Any]:
    await run_in_threadpool(analyses.check_session, session_id)
    staging = await run_in_threadpool(store.staging_dir)
    try:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            upload = await receive_multipart(
                request, staging / "data", settings.max_upload_bytes, {"data", "validation"}, settings
            )
        elif content_type.startswith("application/x-www-form-urlencoded"):
            form = await request.form()
            upload = Upload(fields={k: v for k, v in form.items() if isinstance(v, str)})
        else:
            raise UnsupportedMedia(
                "unsupported_media_type", "send the settings and calibration files as multipart/form-data"
            )
        return await run_in_threadpool(analyses.submit, session_id, staging, upload)
    finally:
        await run_in_threadpool(shutil.rmtree, staging, True)


@router.get(
    "/{session_id}/quant",
    response_model=AnalysisList,
    summary="The session's quantization analyses, newest first, each with the model version it ran on",
)
def list_analyses(session_id: str, analyses: Analyses) -> dict[str, Any]:
    return analyses.listing(session_id)


@router.get(
    "/{session_id}/quant/{job_id}/report",
    response_model=QuantReport,
    summary="The analysis report (onnx-workbench/quant-report)",
    responses={200: {"content": {"application/json": {}}}},
)
def get_report(session_id: str, job_id: str, analyses: Analyses, histograms: bool = Query(default=True)) -> Response:
    path, meta = analyses.report_file(session_id, job_id)
    headers = {"X-Model-Version": str(meta["version"])}
    if histograms:
        return FileResponse(path, media_type="application/json", headers=headers)
    report = json.loads(path.read_text(encoding="utf-8"))
    for entry in report["tensors"].values():
        entry.pop("histogram", None)
    return Response(json.dumps(report, allow_nan=False), media_type="application/json", headers=headers)


@router.get(
    "/{session_id}/quant/{job_id}/histogram/{tensor:path}",
    response_model=TensorHistogram,
    summary="One tensor of the analysis: histogram, exact min/max, every range, predicted SQNR",
)
def get_histogram(
    session_id: str,
    job_id: str,
    tensor: str,
    analyses: Analyses,
    bins: int | None = Query(
        default=None, ge=2, le=MAX_HISTOGRAM_BINS, description="resample onto this many equal bins over [min, max]"
    ),
) -> dict[str, Any]:
    analysis, meta = analyses.analysis(session_id, job_id)
    if tensor not in analysis.tensors:
        raise NotFound(
            "unknown_tensor", f"'{tensor}' is not a quantization point of this analysis", {"tensor": tensor[:200]}
        )
    entry = tensor_report(analysis, tensor, True, bins)
    hybrid = analysis.hybrid.int16 if analysis.hybrid is not None else []
    return {"tensor": tensor, "version": meta["version"], "int16_in_hybrid": tensor in hybrid, **entry}


@router.get(
    "/{session_id}/quant/{job_id}/qdq",
    summary="The QDQ model of a configuration, or of a base with the given tensors in int16",
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_qdq(
    session_id: str, job_id: str, analyses: Analyses, config: str = CONFIG, int16: str | None = INT16, k: int | None = K
) -> Response:
    files, staging, meta = analyses.export_qdq(session_id, job_id, config, int16, k)
    response = file_response(
        files, files[0][0].removesuffix(".onnx"), BackgroundTask(shutil.rmtree, staging, ignore_errors=True)
    )
    response.headers["X-Model-Version"] = str(meta["version"])
    return response


@router.get(
    "/{session_id}/quant/{job_id}/table",
    response_model=QuantTable,
    summary="The quantization table (onnx-workbench/quant-table) of a configuration, or of a base with the "
    "given tensors in int16",
)
def get_table(
    session_id: str, job_id: str, analyses: Analyses, config: str = CONFIG, int16: str | None = INT16, k: int | None = K
) -> Response:
    table, meta = analyses.table(session_id, job_id, config, int16, k)
    return Response(
        json.dumps(table, allow_nan=False),
        media_type="application/json",
        headers={
            "Content-Disposition": content_disposition("quant-table.json"),
            "X-Model-Version": str(meta["version"]),
        },
    )


@router.get(
    "/{session_id}/quant/{job_id}/toolkit-file",
    summary="The plan in the target toolkit's own file "
    "(Acuity .quantize, RKNN .quantization.cfg) for a configuration, or a base with the given tensors in "
    "int16",
    responses={200: {"content": {"application/yaml": {}}}},
)
def get_toolkit_file(
    session_id: str, job_id: str, analyses: Analyses, config: str = CONFIG, int16: str | None = INT16, k: int | None = K
) -> Response:
    text, name, meta = analyses.toolkit_file(session_id, job_id, config, int16, k)
    return Response(
        text,
        media_type="application/yaml",
        headers={"Content-Disposition": content_disposition(name), "X-Model-Version": str(meta["version"])},
    )


@router.post(
    "/{session_id}/quant/{job_id}/measure",
    status_code=202,
    response_model=JobStarted,
    summary="Measure a per-tensor precision end to end (background job); its result holds the output "
    "SQNR and cosine under end_to_end.custom",
)
def start_measure(session_id: str, job_id: str, body: MeasureRequest, analyses: Analyses) -> dict[str, Any]:
    return analyses.measure(session_id, job_id, body)
