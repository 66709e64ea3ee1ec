"""Quantization requests: the settings of an analysis (a JSON field or form fields of a multipart upload),
a precision to measure, and what the analysis routes answer."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import Invalid
from .common import MAX_SEED, file_field, multipart_body

QUANT_BODY = multipart_body(
    {
        "data": file_field(
            "calibration data: one .npz (arrays keyed by input name, samples on the first axis) or "
            ".npy, or image files, or a .zip of images",
            many=True,
        ),
        "validation": file_field("separate data for the end-to-end measurements (same kinds)", many=True),
        "settings": {
            "type": "string",
            "description": "JSON object of QuantSettings; any of its fields may also come as a form field of its own",
        },
    }
)


class Preprocess(BaseModel):
    """Image preprocessing, Acuity style: (pixel - mean) * scale, or / std."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    size: list[Annotated[int, Field(ge=1)]] | None = Field(
        default=None, description="[H, W] for an input whose spatial dims are dynamic"
    )
    channel_order: Literal["rgb", "bgr"] = "rgb"
    mean: list[float] | None = None
    scale: list[float] | None = None
    std: list[float] | None = None
    layout: Literal["nchw", "nhwc"] | None = None


class QuantSettings(BaseModel):
    """What the analysis is asked to do; ``target`` is the toolkit simulated (default Acuity)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # NaN would end up in the report JSON

    target: Literal["acuity", "rknn", "onnxruntime"] = Field(
        default="acuity", description="toolkit whose quantizers, int16 and fused layers are simulated"
    )

    random: int | None = Field(
        default=None, ge=1, le=10_000, description="N random batches instead of files (the report says synthetic)"
    )
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    percentile: float = Field(default=99.99, gt=50, le=100)
    kl_method: Literal["tensorrt", "onnxruntime"] = "tensorrt"
    per_channel: bool = Field(default=False, description="onnxruntime target: per-channel weight scales")
    int16_weights: bool = Field(
        default=False,
        description="onnxruntime target: int16 layers get int16 weights too "
        "(W16A16, as Acuity's and RKNN's int16 layers always do); default A16W8",
    )
    end_to_end: bool = Field(default=True, description="measure uint8/int16 QDQ models and search the hybrid")
    target_margin_db: float = 3.0
    target_sqnr_db: float | None = None
    good_cosine: float = Field(
        default=0.99, ge=-1, le=1, description="verdict: an output is good with at least this cosine and good_sqnr_db"
    )
    good_sqnr_db: float = Field(default=20.0, description="verdict: an output is good with at least this SQNR")
    marginal_cosine: float = Field(
        default=0.95, ge=-1, le=1, description="verdict: marginal from this cosine, poor below"
    )
    hybrid_base: Literal["uint8/minmax", "uint8/kl"] | None = None
    search_samples: int = Field(
        default=4,
        ge=1,
        le=10_000,
        description="samples of the precision curve and of the weights-only / activations-only runs",
    )
    sensitivity_samples: int = Field(
        default=1,
        ge=1,
        le=1_000,
        description="samples of the error map and of the sensitivity ranking (one run per point each)",
    )
    shapes: dict[str, list[int]] | None = Field(
        default=None, description="shapes of inputs with dynamic dims (random data, images)"
    )
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
        raise Invalid(
            "bad_settings", "invalid quantization settings: " + "; ".join(problems[:5]), {"problems": problems[:20]}
        ) from None


class MeasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    int16: list[str] = Field(
        default_factory=list, description="tensors in int16 (Min-Max); the others stay in the base configuration"
    )
    base: Literal["uint8/minmax", "uint8/kl", "hybrid"] | None = Field(
        default=None,
        description="the configuration the others keep: the hybrid's uint8 base by default, and "
        "'hybrid' keeps its recommended int16 tensors too",
    )
    overrides: dict[str, str] = Field(
        default_factory=dict, description="per tensor: uint8, int16 or dtype/algorithm (minmax, kl, percentile, mse)"
    )


class JobStarted(BaseModel):
    """A job accepted: follow it at links.job."""

    job_id: str
    session: str
    version: int = Field(description="the model version the job works on")
    state: str
    links: dict[str, str]


class AnalysisEntry(BaseModel):
    job_id: str
    version: int
    current: bool = Field(description="ran on the session's current version")
    state: str
    created: float
    settings: dict[str, Any]


class AnalysisList(BaseModel):
    version: int
    analyses: list[AnalysisEntry]


class TensorHistogram(BaseModel):
    """One tensor of the report, with its full (or resampled) histogram."""

    model_config = ConfigDict(extra="allow")

    tensor: str
    version: int
    int16_in_hybrid: bool


class QuantReport(BaseModel):
    """The onnx-workbench/quant-report document (app/quant/report.py)."""

    model_config = ConfigDict(extra="allow")

    format: str
    tensors: dict[str, Any]


class QuantTable(BaseModel):
    """The onnx-workbench/quant-table document: per tensor, its quantizer and range."""

    model_config = ConfigDict(extra="allow")

    format: str
    configuration: str
    tensors: dict[str, Any]
