"""The graph editing engine: load a model, apply edits atomically with undo, report shapes, save.

Plain Python on onnx and onnxruntime; the web service and the CLI are thin layers over this.
"""

from .document import ModelDocument
from .edits import EDIT_OPS
from .errors import EditError, ModelLoadError, NotFoundError, WorkbenchError
from .io import load_model, save_model
from .script import read_script, script_document
from .shapes import shape_report

__all__ = [
    "EDIT_OPS",
    "EditError",
    "ModelDocument",
    "ModelLoadError",
    "NotFoundError",
    "WorkbenchError",
    "load_model",
    "read_script",
    "save_model",
    "script_document",
    "shape_report",
]
