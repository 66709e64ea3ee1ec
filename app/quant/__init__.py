"""Quantization analysis: per-tensor statistics, clip ranges, uint8/int16 error, hybrid, QDQ export.

Entry points for callers (CLI, job runner)::

    model, specs = model_inputs("model.onnx")
    data = open_calibration_data(specs, "calib.npz")
    analysis = analyze(model, data, QuantOptions(target="acuity"), progress=cb, cancel=event)
    write_json(build_report(analysis), "report.json")
    analysis.export_qdq("model.qdq.onnx")
    Path("model.quantize").write_text(acuity_quantize(analysis, "hybrid"))  # app.quant.export
    analysis.save("analysis.pickle"); later: load_analysis("analysis.pickle", "model.onnx")
"""

from app.quant.analysis import CONFIGS, HYBRID, QuantAnalysis, QuantOptions, analyze, load_analysis, model_inputs
from app.quant.calibration import CalibrationData, ImagePreprocess, open_calibration_data
from app.quant.errors import QuantCancelled, QuantError
from app.quant.report import build_report, quant_table, tensor_report, write_json

__all__ = [
    "CONFIGS",
    "HYBRID",
    "CalibrationData",
    "ImagePreprocess",
    "QuantAnalysis",
    "QuantCancelled",
    "QuantError",
    "QuantOptions",
    "analyze",
    "build_report",
    "load_analysis",
    "model_inputs",
    "open_calibration_data",
    "quant_table",
    "tensor_report",
    "write_json",
]
