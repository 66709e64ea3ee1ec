"""The analysis' onnxruntime sessions: app.runtime's, with its errors worded for the analysis as QuantErrors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import ModelProto

from app.quant.errors import QuantError
from app.runtime import session as runtime
from app.runtime.errors import LoadFailed, RunFailed, TooBig


def serialize(model: ModelProto) -> bytes:
    """The model as bytes for onnxruntime, or a QuantError when it is over protobuf's 2 GB."""
    try:
        return runtime.serialize(model)
    except TooBig as exc:
        raise QuantError(exc.message) from exc


def session(
    model: ModelProto | bytes, level: str = "all", arena: bool = True, folder: Path | None = None, lanes: bool = False
) -> ort.InferenceSession:
    """``app.runtime.session.open_session`` (see there for the options); failures are QuantErrors."""
    try:
        return runtime.open_session(model, level, arena, folder, lanes)
    except TooBig as exc:
        raise QuantError(exc.message) from exc
    except LoadFailed as exc:
        raise QuantError(f"onnxruntime cannot load the model: {exc.cause}") from exc


def run(sess: ort.InferenceSession, outputs: list[str] | None, feeds: dict[str, np.ndarray]) -> list:
    """The outputs as OrtValues; onnxruntime's errors about the inputs become a QuantError."""
    try:
        return runtime.run_values(sess, outputs, feeds)
    except RunFailed as exc:
        raise QuantError(f"onnxruntime failed on the calibration data: {exc.cause}") from exc
