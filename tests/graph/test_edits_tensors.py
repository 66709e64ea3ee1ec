"""Tensor, interface and whole-graph edits on small models."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.graph import EditError, NotFoundError

from .builders import chain_model, doc_of, feeds_for, run, snapshot


@pytest.fixture
def doc(tmp_path):
    return doc_of(chain_model(), tmp_path)


def npy_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return base64.b64encode(buffer.getvalue()).decode()


def test_rename_tensor_everywhere_keeps_function(doc):
    feeds = feeds_for(doc.model)
    expected = run(doc.model, feeds)
    doc.apply(
        [
            {"op": "rename_tensor", "tensor": "relu_out", "to": "/model.1/Relu_output_0"},
            {"op": "rename_tensor", "tensor": "y", "to": "out:0"},
            {"op": "rename_tensor", "tensor": "W", "to": "conv.weight"},
        ]
    )
    graph = doc.model.graph
    assert list(graph.node[1].output) == ["/model.1/Relu_output_0"]
    assert list(graph.node[2].input) == ["/model.1/Relu_output_0"]
    assert graph.value_info[0].name == "/model.1/Relu_output_0"
    assert graph.output[0].name == "out:0"
    assert graph.initializer[0].name == "conv.weight" and graph.node[0].input[1] == "conv.weight"
    got = run(doc.model, feeds)
    np.testing.assert_array_equal(got["out:0"], expected["y"])


def test_rename_tensor_refusals(doc):
    before = snapshot(doc)
    with pytest.raises(EditError, match="already exists"):
        doc.apply([{"op": "rename_tensor", "tensor": "relu_out", "to": "z"}])
    with pytest.raises(NotFoundError, match="no tensor 'nope'"):
        doc.apply([{"op": "rename_tensor", "tensor": "nope", "to": "q"}])
    assert doc.model == before


def test_rename_tensor_inside_if_bodies(tmp_path):
    then = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"])],
        "then",
        [],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])],
    )
    other = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["b"])],
        "else",
        [],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], name="if", then_branch=then, else_branch=other)],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    doc = doc_of(model, tmp_path)
    assert doc.main.index.users("x")[0].name == "if"  # outer-scope use indexed on the If node
    doc.apply([{"op": "rename_tensor", "tensor": "x", "to": "signal"}])
    bodies = {a.name: a.g for a in doc.model.graph.node[0].attribute}
    assert list(bodies["then_branch"].node[0].input) == ["signal"]
    assert list(bodies["else_branch"].node[0].input) == ["signal"]
    x = np.array([-1.0, 2.0], np.float32)
    out = run(doc.model, {"signal": x, "c": np.array(False)})
    np.testing.assert_array_equal(out["y"], -x)


def test_set_initializer_value_and_npy(doc):
    doc.apply([{"op": "set_initializer", "name": "C", "value": 2}])
    tensor = doc.model.graph.initializer[2]
    assert list(tensor.dims) == [] and numpy_helper.to_array(tensor) == np.float32(2)
    b = np.arange(4, dtype=np.float32)
    doc.apply([{"op": "set_initializer", "name": "B", "npy_base64": npy_b64(b)}])
    np.testing.assert_array_equal(numpy_helper.to_array(doc.model.graph.initializer[1]), b)
    assert [t.name for t in doc.model.graph.initializer] == ["W", "B", "C"]  # order kept


def test_set_initializer_checks_dtype_and_shape(doc):
    before = snapshot(doc)
    with pytest.raises(EditError, match="float32, the new value is float64") as err:
        doc.apply([{"op": "set_initializer", "name": "B", "npy_base64": npy_b64(np.zeros(4))}])
    assert err.value.code == "wrong_dtype"
    with pytest.raises(EditError, match=r"shape \[4\], the new value \[5\]"):
        doc.apply([{"op": "set_initializer", "name": "B", "value": [1, 2, 3, 4, 5]}])
    with pytest.raises(EditError, match="strings"):
        doc.apply([{"op": "set_initializer", "name": "B", "value": ["a", "b", "c", "d"]}])
    with pytest.raises(EditError, match="not a valid .npy"):
        doc.apply([{"op": "set_initializer", "name": "B", "npy_base64": base64.b64encode(b"junk").decode()}])
    with pytest.raises(NotFoundError):
        doc.apply([{"op": "set_initializer", "name": "nope", "value": 1}])
    assert doc.model == before


def test_set_initializer_reshape(doc):
    doc.apply([{"op": "set_initializer", "name": "C", "value": [[1, 2, 3, 4, 5, 6, 7, 8]], "reshape": True}])
    assert list(doc.model.graph.initializer[2].dims) == [1, 8]
    out = run(doc.model, feeds_for(doc.model))
    assert out["y"].shape == (1, 4, 8, 8)


def test_set_initializer_on_constant_node(tmp_path):
    model = chain_model()
    model.graph.initializer.pop()  # C becomes a Constant node
    model.graph.node.insert(
        0, helper.make_node("Constant", [], ["C"], name="c", value=numpy_helper.from_array(np.float32(0.5), ""))
    )
    doc = doc_of(model, tmp_path)
    doc.apply([{"op": "set_initializer", "name": "C", "value": 3}])
    assert numpy_helper.to_array(doc.model.graph.node[0].attribute[0].t) == np.float32(3)


def test_inputs_and_outputs(doc):
    doc.apply([{"op": "add_input", "name": "extra", "dtype": "float32", "shape": [1, "N", None]}])
    vi = doc.model.graph.input[1]
    assert vi == helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1, "N", None])
    doc.apply([{"op": "remove_input", "name": "extra"}])
    assert [v.name for v in doc.model.graph.input] == ["x"]
    doc.apply([{"op": "add_output", "tensor": "relu_out"}, {"op": "add_output", "tensor": "id_out"}])
    outs = {o.name: o for o in doc.model.graph.output}
    assert outs["relu_out"].type == helper.make_tensor_type_proto(TensorProto.FLOAT, [1, 4, 8, 8])
    assert outs["id_out"].type.tensor_type.elem_type == TensorProto.FLOAT  # from shape inference
    assert run(doc.model, feeds_for(doc.model))["id_out"].shape == (1, 4, 8, 8)
    doc.apply([{"op": "remove_output", "name": "z"}])
    assert [o.name for o in doc.model.graph.output] == ["y", "relu_out", "id_out"]


def test_interface_refusals(doc):
    before = snapshot(doc)
    with pytest.raises(EditError, match="still read by node 'conv'"):
        doc.apply([{"op": "remove_input", "name": "x"}])
    with pytest.raises(EditError, match="already a model input"):
        doc.apply([{"op": "add_input", "name": "x", "dtype": "float32", "shape": [1]}])
    with pytest.raises(EditError, match="unknown dtype"):
        doc.apply([{"op": "add_input", "name": "q", "dtype": "floaty", "shape": [1]}])
    with pytest.raises(EditError, match="out of range"):
        doc.apply([{"op": "add_input", "name": "q", "dtype": "float32", "shape": [10**12]}])
    with pytest.raises(EditError, match="already a model output"):
        doc.apply([{"op": "add_output", "tensor": "y"}])
    doc.apply([{"op": "remove_output", "name": "z"}])
    with pytest.raises(EditError, match="last model output"):
        doc.apply([{"op": "remove_output", "name": "y"}])
    doc.undo()
    assert doc.model == before


def test_set_shape_and_fix_dim(tmp_path):
    model = chain_model()
    for vi in list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        dims[0].dim_param = "batch"
        dims[2].dim_param = "H"
    del model.graph.value_info[:]
    doc = doc_of(model, tmp_path)
    doc.apply([{"op": "fix_dim", "dim": "batch", "value": 1}])
    shapes = [
        [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
        for v in list(doc.model.graph.input) + list(doc.model.graph.output)
    ]
    assert shapes == [[1, 3, "H", 8], [1, 4, "H", 8], [1, 4, "H", 8]]
    with pytest.raises(NotFoundError, match="named dims are: H"):
        doc.apply([{"op": "fix_dim", "dim": "W", "value": 8}])
    doc.apply([{"op": "set_shape", "tensor": "x", "shape": [1, 3, 8, 8]}])
    assert [d.dim_value for d in doc.model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 8, 8]
    with pytest.raises(EditError, match="neither a model input nor a model output"):
        doc.apply([{"op": "set_shape", "tensor": "relu_out", "shape": [1]}])
