"""Small models built with onnx.helper for exact edit tests, and a runner to compare outputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from app.graph import ModelDocument, load_model


def chain_model() -> onnx.ModelProto:
    """x -> Conv(W,B) -> Relu -> Identity -> Add(C) -> y, plus an unnamed Sigmoid side branch to z."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "B")
    c = numpy_helper.from_array(np.float32(0.5), "C")
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["conv_out"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv_out"], ["relu_out"], name="relu"),
        helper.make_node("Identity", ["relu_out"], ["id_out"], name="ident"),
        helper.make_node("Add", ["id_out", "C"], ["y"], name="add"),
        helper.make_node("Sigmoid", ["conv_out"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes, "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, 8, 8])],
        [w, b, c],
        value_info=[helper.make_tensor_value_info("relu_out", TensorProto.FLOAT, [1, 4, 8, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="test")
    model.ir_version = 8
    helper.set_model_props(model, {"author": "tests"})
    onnx.checker.check_model(model)
    return model


def matmul_model(weight: np.ndarray) -> onnx.ModelProto:
    """y = x @ W with W an initializer: a model whose size is its weight, for storage tests."""
    rows, cols = weight.shape
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cols])],
                              [numpy_helper.from_array(weight, "W")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def doc_of(model: onnx.ModelProto, tmp_path: Path, name: str = "m.onnx") -> ModelDocument:
    path = tmp_path / name
    onnx.save_model(model, path)
    return load_model(path)


def snapshot(doc: ModelDocument) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(doc.model)
    return copy


def feeds_for(model: onnx.ModelProto, seed: int = 0, sizes: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Random inputs matching the model's input types; symbolic dims take `sizes` or 1."""
    rng = np.random.default_rng(seed)
    initializers = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in initializers:
            continue
        tensor_type = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (sizes or {}).get(d.dim_param, 1)
                 for d in tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        if dtype.kind == "f":
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[vi.name] = rng.integers(0, 5, shape).astype(dtype)
    return feeds


def run(model: onnx.ModelProto | str | Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))
