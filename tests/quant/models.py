"""Small float models built with onnx.helper for the quantization tests."""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, TensorProto, helper, numpy_helper


def conv_net(
    outlier: bool = False, seed: int = 0, opset: int = 17, size: int = 16, input_dims: list | None = None
) -> ModelProto:
    """A small CNN with Relu, Add, Sigmoid, Mul and Tanh activations (about 12 quantization points).

    ``outlier`` plants one channel with a huge offset whose later weights are tiny: it
    barely reaches the output but stretches its tensor's Min-Max range, as real outlier
    channels do.
    """
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    inits = {
        "w1": weight(8, 3, 3, 3),
        "b1": (rng.standard_normal(8) * 0.1).astype(np.float32),
        "w2": weight(8, 8, 3, 3),
        "b2": (rng.standard_normal(8) * 0.1).astype(np.float32),
        "w3": weight(8, 8, 1, 1),
        "b3": np.zeros(8, np.float32),
        "w4": weight(8, 8, 3, 3),
        "b4": np.zeros(8, np.float32),
        "w5": weight(4, 8, 1, 1),
        "b5": np.zeros(4, np.float32),
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
        nodes,
        "conv_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def integer_model() -> ModelProto:
    """A model with no float tensor at all."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        "ints",
        [
            helper.make_tensor_value_info("a", TensorProto.INT64, [2]),
            helper.make_tensor_value_info("b", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.INT64, [2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def picodet_like(seed: int = 0, size: int = 32) -> ModelProto:
    """A PicoDet-shaped Paddle export: Conv without bias -> BatchNormalization -> HardSwish spelled out
    as Add(+3) -> Clip(0, 6) -> Mul -> Div(6) (and with the /6 first), MaxPool, a residual Add + Relu,
    nearest Resize, Concat, Swish as Sigmoid*Mul, LeakyRelu, a constant scale-and-shift, HardSigmoid,
    PRelu, Relu6 as Clip, HardSwish, and Transpose/Reshape before a Sigmoid head.

    Its toolkit layers: the input, 9 Conv layers, the residual Add and the Sigmoid head (12).
    """
    rng = np.random.default_rng(seed)
    nodes, inits = [], {}

    def const(name: str, value) -> str:
        inits[name] = np.asarray(value, dtype=np.float32)
        return name

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def conv(x: str, name: str, cin: int, cout: int, bias: bool = False) -> str:
        w = const(f"{name}.w", rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(9 * cin))
        inputs = [x, w, const(f"{name}.b", rng.standard_normal(cout) * 0.1)] if bias else [x, w]
        return node("Conv", inputs, name, pads=[1] * 4)

    def bn(x: str, name: str, c: int) -> str:
        return node(
            "BatchNormalization",
            [
                x,
                const(f"{name}.scale", rng.uniform(0.5, 2, c)),
                const(f"{name}.bias", rng.standard_normal(c) * 0.1),
                const(f"{name}.mean", rng.standard_normal(c) * 0.1),
                const(f"{name}.var", rng.uniform(0.5, 2, c)),
            ],
            name,
        )

    def hardswish(x: str, name: str, div_first: bool = False) -> str:
        a = node("Add", [x, const(f"{name}.three", 3.0)], f"{name}.add")
        c = node("Clip", [a, const(f"{name}.zero", 0.0), const(f"{name}.six", 6.0)], f"{name}.clip")
        if div_first:
            d = node("Div", [c, const(f"{name}.six_d", 6.0)], f"{name}.div")
            return node("Mul", [x, d], f"{name}.mul")
        m = node("Mul", [x, c], f"{name}.mul")
        return node("Div", [m, const(f"{name}.six_d", 6.0)], f"{name}.div")

    b1 = hardswish(bn(conv("x", "conv1", 3, 8), "bn1", 8), "hs1")
    b2 = hardswish(bn(conv(b1, "conv2", 8, 8), "bn2", 8), "hs2")
    p = node("MaxPool", [b2], "pool", kernel_shape=[2, 2], strides=[2, 2])
    b3 = hardswish(bn(conv(p, "conv3", 8, 8), "bn3", 8), "hs3", div_first=True)
    r = node("Relu", [node("Add", [b3, p], "residual")], "residual.relu")
    u = node("Resize", [r, "", const("scales", [1, 1, 2, 2])], "upsample", mode="nearest")
    cat = node("Concat", [u, b2], "concat", axis=1)
    c4 = conv(cat, "conv4", 16, 8, bias=True)
    b4 = node("Mul", [c4, node("Sigmoid", [c4], "swish.sigmoid")], "swish.mul")
    b5 = node("LeakyRelu", [bn(conv(b4, "conv5", 8, 8), "bn5", 8)], "leaky", alpha=0.1)
    c6 = conv(b5, "conv6", 8, 8, bias=True)
    shift = node(
        "Add",
        [
            node("Mul", [c6, const("scale6", rng.uniform(0.5, 2, (1, 8, 1, 1)))], "scale6.mul"),
            const("shift6", rng.standard_normal((1, 8, 1, 1))),
        ],
        "shift6.add",
    )
    b6 = node("HardSigmoid", [shift], "hsig", alpha=1 / 6, beta=0.5)
    b7 = node("PRelu", [conv(b6, "conv7", 8, 8, bias=True), const("slope", np.full((8, 1, 1), 0.2))], "prelu")
    b8 = node("Clip", [conv(b7, "conv8", 8, 8, bias=True), const("lo8", 0.0), const("hi8", 6.0)], "relu6")
    node("HardSwish", [conv(b8, "conv9", 8, 8, bias=True)], "y")
    t = node("Transpose", [b8], "transpose", perm=[0, 2, 3, 1])
    node("Sigmoid", [node("Reshape", [t, "shape"], "reshape")], "scores")
    graph = helper.make_graph(
        nodes,
        "picodet_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, None),
        ],
        [numpy_helper.from_array(v, k) for k, v in inits.items()]
        + [numpy_helper.from_array(np.array([1, -1, 8], np.int64), "shape")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def planted_culprit(size: int = 128, seed: int = 0, spike: float = 700.0, decoy_spike: float = 400.0) -> ModelProto:
    """An easy CNN with one planted culprit and a decoy, for the sensitivity ranking (issue 14).

    The culprit ``spiked`` is a Conv's output plus a constant that is zero but for one hot pixel of
    ``spike`` in channel 3, which the next Conv barely reads: uint8 Min-Max must cover the hot pixel, its
    step drowns every other value of the tensor, and the outputs lose what the next Conv reads. The hot
    pixel is one value among 16 x size^2, so it does not carry the tensor's energy: the tensor's own
    error shows the damage too.

    The decoy ``decoy`` is a wide side branch (64 channels) with a hot pixel of its own, added back to the
    main path through weights x 1e-3: its own uint8 error is worse than the culprit's (the per-tensor
    table ranks it first), but the outputs hardly feel it. Every other point is harmless.
    """
    rng = np.random.default_rng(seed)

    def weight(*shape: int, gain: float = 1.0) -> np.ndarray:
        return (gain * rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    hot = np.zeros((1, 16, size, size), np.float32)
    hot[0, 3, size // 2, size // 2] = spike
    hot_decoy = np.zeros((1, 64, size, size), np.float32)
    hot_decoy[0, 5, size // 3, size // 3] = decoy_spike
    inits = {
        "w1": weight(8, 3, 3, 3),
        "b1": np.zeros(8, np.float32),
        "w2": weight(16, 8, 3, 3),
        "b2": np.zeros(16, np.float32),
        "hot": hot,
        "w3": weight(8, 16, 3, 3),
        "b3": np.zeros(8, np.float32),
        "wd": weight(64, 8, 3, 3),
        "hot_decoy": hot_decoy,
        "we": weight(8, 64, 1, 1, gain=1e-3),
        "w5": weight(4, 8, 3, 3),
        "b5": np.zeros(4, np.float32),
    }
    inits["w3"][:, 3] *= 1e-3
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1] * 4, name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1] * 4, name="conv2"),
        helper.make_node("Add", ["c2", "hot"], ["spiked"], name="hot_pixel"),
        helper.make_node("Conv", ["spiked", "w3", "b3"], ["c3"], pads=[1] * 4, name="conv3"),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("Conv", ["r3", "wd"], ["cd"], pads=[1] * 4, name="conv_decoy"),
        helper.make_node("Add", ["cd", "hot_decoy"], ["decoy"], name="hot_pixel_decoy"),
        helper.make_node("Conv", ["decoy", "we"], ["faint"], name="conv_faint"),
        helper.make_node("Add", ["r3", "faint"], ["joined"], name="join"),
        helper.make_node("Conv", ["joined", "w5", "b5"], ["y"], pads=[1] * 4, name="conv5"),
    ]
    graph = helper.make_graph(
        nodes,
        "planted_culprit",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
