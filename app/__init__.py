"""onnx-workbench: edit ONNX graphs, make shapes static and analyse quantization before NPU conversion."""

__version__ = "0.1.0"
