"""onnxruntime's quantization points: a Relu/Clip whose input has no other reader fuses into its producer."""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, TensorProto, ValueInfoProto, helper, numpy_helper

from app.quant.model import infer_types, quantization_points


def _value(name: str, dtype: int = TensorProto.FLOAT) -> ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, [1, 4] if dtype == TensorProto.FLOAT else [])


def _model(nodes: list, inputs: list, outputs: list[str]) -> ModelProto:
    w = numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    graph = helper.make_graph(nodes, "g", inputs, [_value(o) for o in outputs], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _points(model: ModelProto) -> dict[str, tuple[str, ...]]:
    return {p.name: p.nodes for p in quantization_points(model, infer_types(model))}


def test_a_relu_fuses_into_its_producer_unless_its_input_is_read_elsewhere() -> None:
    model = _model(
        [
            helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
            helper.make_node("Relu", ["m"], ["r"], name="relu"),
            helper.make_node("Sigmoid", ["r"], ["s"], name="sig"),
            helper.make_node("Clip", ["s"], ["c"], name="clip"),
            helper.make_node("Add", ["s", "c"], ["y"], name="add"),
        ],
        [_value("x")],
        ["y"],
    )
    # m: read by the Relu alone, so the Relu's output is the layer's point; s: read by the Clip and the Add
    assert _points(model) == {"x": (), "r": ("mm", "relu"), "s": ("sig",), "c": ("clip",), "y": ("add",)}


def test_a_control_flow_body_reading_the_relus_input_keeps_it_a_point() -> None:
    then = helper.make_graph([helper.make_node("Neg", ["a"], ["t"])], "then", [], [_value("t")])
    other = helper.make_graph([helper.make_node("Abs", ["a"], ["e"])], "else", [], [_value("e")])
    model = _model(
        [
            helper.make_node("Sigmoid", ["x"], ["a"], name="sig"),
            helper.make_node("Relu", ["a"], ["r"], name="relu"),
            helper.make_node("If", ["flag"], ["o"], name="if", then_branch=then, else_branch=other),
            helper.make_node("Add", ["r", "o"], ["y"], name="add"),
        ],
        [_value("x"), _value("flag", TensorProto.BOOL)],
        ["y"],
    )
    # the If's bodies read a from outside: the Relu is not its only reader (GraphIndex counts body reads)
    assert _points(model) == {"x": (), "a": ("sig",), "r": ("relu",), "o": ("if",), "y": ("add",)}
