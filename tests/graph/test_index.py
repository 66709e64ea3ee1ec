"""The graph index over control-flow bodies: what a body reads from outside makes its owner a reader."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from app.graph import ModelDocument


def test_a_body_with_a_sparse_initializer_reads_only_what_it_does_not_define() -> None:
    values = numpy_helper.from_array(np.array([1.0, 2.0], dtype=np.float32), "sparse_w")
    indices = numpy_helper.from_array(np.array([0, 3], dtype=np.int64), "sparse_w_indices")
    sparse = helper.make_sparse_tensor(values, indices, [4])
    out = helper.make_tensor_value_info("t", TensorProto.FLOAT, [4])
    then = helper.make_graph(
        [helper.make_node("Add", ["sparse_w", "x"], ["t"])], "then", [], [out], sparse_initializer=[sparse]
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [4])],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["flag"], ["y"], name="branch", then_branch=then, else_branch=other)],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    doc = ModelDocument(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    index = doc.main.index
    branch = doc.main.find_node("branch")
    assert index.reads(branch) == ["flag", "x"]  # the body's sparse initializer is its own, not an outer read
    assert index.users("x") == [branch] and index.users("sparse_w") == []
