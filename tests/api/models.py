"""Small models built in the tests, for what the fixture models do not have (odd names, huge tensors, 20k nodes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ODD_NAME = "/model.23/Concat_26 weights:0"


def odd_names_model(path: Path, weight: str = ODD_NAME) -> Path:
    """y = x + W, with W named like an exported PyTorch tensor (slashes, a colon and a space) or as given."""
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), weight)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", weight], ["y"], name="/model.23/Add")],
        "odd",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def big_tensor_model(path: Path, elements: int = 3_000_000) -> Path:
    """y = x * W with W of `elements` float32 values drawn from N(2, 3): for sampled statistics."""
    values = np.random.default_rng(0).normal(2.0, 3.0, elements).astype(np.float32)
    w = numpy_helper.from_array(values, "W")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "W"], ["y"], name="mul")],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [elements])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [elements])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def chain_model(path: Path, nodes: int, width: int = 16, matmul_every: int = 0) -> Path:
    """A chain of `nodes` nodes on a [1, width] tensor: Add of a bias and Relu in turn, and with
    `matmul_every` > 0 every such node a MatMul by its own [width, width] float32 weight."""
    rng = np.random.default_rng(1)
    graph_nodes, inits = [], []
    current = "x"
    for i in range(nodes):
        out = f"t{i}"
        if matmul_every and i % matmul_every == matmul_every - 1:
            inits.append(
                numpy_helper.from_array(rng.standard_normal((width, width), dtype=np.float32) / width, f"w{i}")
            )
            graph_nodes.append(helper.make_node("MatMul", [current, f"w{i}"], [out], name=f"n{i}"))
        elif i % 2 == 0:
            inits.append(numpy_helper.from_array(rng.standard_normal((1, width)).astype(np.float32), f"b{i}"))
            graph_nodes.append(helper.make_node("Add", [current, f"b{i}"], [out], name=f"n{i}"))
        else:
            graph_nodes.append(helper.make_node("Relu", [current], [out], name=f"n{i}"))
        current = out
    graph = helper.make_graph(
        graph_nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, [1, width])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def external_weights_model(folder: Path, megabytes: int) -> tuple[Path, Path]:
    """y = x @ W with W ([rows, 256] float32, about `megabytes` MB) in an external file w.bin."""
    rows = megabytes * (1 << 20) // (256 * 4)
    data = folder / "w.bin"
    block = np.ones((1024, 256), dtype=np.float32).tobytes()
    with open(data, "wb") as f:
        for _ in range(rows // 1024):
            f.write(block)
    rows = rows // 1024 * 1024
    w = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[rows, 256], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "w.bin"), ("offset", "0"), ("length", str(rows * 256 * 4))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")],
        "ext",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])],
        [w],
    )
    model = folder / "ext.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    return model, data


def blocks_model(path: Path, nodes: int, width: int = 8) -> Path:
    """About `nodes` nodes in residual blocks on a [1, width] tensor: MatMul by a weight, Add of a bias,
    Relu, a Constant shape and a Reshape, then Add of the block's input (a skip edge across the block).
    Every third block leaves its Relu and Constant unnamed, as exporters do. Small weights: the model is
    about 100 bytes a node, for the editor's big-graph tests and benchmarks."""
    rng = np.random.default_rng(2)
    graph_nodes, inits = [], []
    current = "x"
    shape = numpy_helper.from_array(np.array([1, width], np.int64))
    for i in range(nodes // 6):
        named = i % 3 != 2
        inits += [
            numpy_helper.from_array(rng.standard_normal((width, width), dtype=np.float32), f"W{i}"),
            numpy_helper.from_array(rng.standard_normal((1, width), dtype=np.float32), f"B{i}"),
        ]
        graph_nodes += [
            helper.make_node("MatMul", [current, f"W{i}"], [f"mm{i}"], name=f"blk{i}/matmul"),
            helper.make_node("Add", [f"mm{i}", f"B{i}"], [f"add{i}"], name=f"blk{i}/add"),
            helper.make_node("Relu", [f"add{i}"], [f"relu{i}"], name=f"blk{i}/relu" if named else ""),
            helper.make_node("Constant", [], [f"shape{i}"], name=f"blk{i}/shape" if named else "", value=shape),
            helper.make_node("Reshape", [f"relu{i}", f"shape{i}"], [f"rs{i}"], name=f"blk{i}/reshape"),
            helper.make_node("Add", [f"rs{i}", current], [f"h{i}"], name=f"blk{i}/skip"),
        ]
        current = f"h{i}"
    graph = helper.make_graph(
        graph_nodes,
        "blocks",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, [1, width])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path
