"""Test suite of onnx-workbench (run with `make test`)."""
