"""Small float models built with onnx.helper for the quantization tests."""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, TensorProto, helper, numpy_helper


def conv_net(outlier: bool = False, seed: int = 0, opset: int = 17, size: int = 16,
             input_dims: list | None = None) -> ModelProto:
    """A small CNN with Relu, Add, Sigmoid, Mul and Tanh activations (about 12 quantization points).

    ``outlier`` plants one channel with a huge offset whose later weights are tiny: it
    barely reaches the output but stretches its tensor's Min-Max range, as real outlier
    channels do.
    """
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    inits = {
        "w1": weight(8, 3, 3, 3), "b1": (rng.standard_normal(8) * 0.1).astype(np.float32),
        "w2": weight(8, 8, 3, 3), "b2": (rng.standard_normal(8) * 0.1).astype(np.float32),
        "w3": weight(8, 8, 1, 1), "b3": np.zeros(8, np.float32),
        "w4": weight(8, 8, 3, 3), "b4": np.zeros(8, np.float32),
        "w5": weight(4, 8, 1, 1), "b5": np.zeros(4, np.float32),
    }
    if outlier:
        inits["b1"][3] = 200.0
        inits["w2"][:, 3] *= 1e-3
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1] * 4, name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1] * 4, name="conv2"),
        helper.make_node("Sigmoid", ["c2"], ["s2"], name="sigmoid2"),
        helper.make_node("Mul", ["c2", "s2"], ["m2"], name="swish2"),
        helper.make_node("Conv", ["m2", "w3", "b3"], ["c3"], name="conv3"),
        helper.make_node("Add", ["c3", "c2"], ["a3"], name="add3"),
        helper.make_node("Tanh", ["a3"], ["t3"], name="tanh3"),
        helper.make_node("Conv", ["t3", "w4", "b4"], ["c4"], pads=[1] * 4, name="conv4"),
        helper.make_node("Relu", ["c4"], ["r4"], name="relu4"),
        helper.make_node("Add", ["r4", "a3"], ["a4"], name="add4"),
        helper.make_node("Conv", ["a4", "w5", "b5"], ["y"], name="conv5"),
    ]
    dims = input_dims or [1, 3, size, size]
    graph = helper.make_graph(
        nodes, "conv_net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def integer_model() -> ModelProto:
    """A model with no float tensor at all."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])], "ints",
        [helper.make_tensor_value_info("a", TensorProto.INT64, [2]),
         helper.make_tensor_value_info("b", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("c", TensorProto.INT64, [2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
