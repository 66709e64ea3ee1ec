"""Node edits on small models: exact protobuf results, refusals that leave the model untouched."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, TensorProto, helper

from app.graph import EditError, NotFoundError

from .builders import chain_model, doc_of, feeds_for, run, snapshot


@pytest.fixture
def doc(tmp_path):
    return doc_of(chain_model(), tmp_path)


def node_names(doc):
    return [n.name or "@" + n.output[0] for n in doc.model.graph.node]


def test_delete_single_node_refused_while_read(doc):
    before = snapshot(doc)
    with pytest.raises(EditError) as err:
        doc.apply([{"op": "delete_node", "node": "relu"}])
    assert "relu_out" in err.value.message and "ident" in err.value.message
    assert doc.model == before


def test_delete_leaf_removes_output_and_unused_weights(doc):
    doc.apply([{"op": "delete_node", "node": "add"}])
    assert node_names(doc) == ["conv", "relu", "ident", "@z"]
    assert [o.name for o in doc.model.graph.output] == ["z"]
    assert [t.name for t in doc.model.graph.initializer] == ["W", "B"]  # C only fed add
    onnx.checker.check_model(doc.model)


def test_delete_with_descendants(doc):
    doc.apply([{"op": "delete_node", "node": "relu", "descendants": True}])
    assert node_names(doc) == ["conv", "@z"]
    assert [o.name for o in doc.model.graph.output] == ["z"]
    assert [t.name for t in doc.model.graph.initializer] == ["W", "B"]
    assert [v.name for v in doc.model.graph.value_info] == []  # relu_out's value_info went with it
    onnx.checker.check_model(doc.model)


def test_delete_unnamed_node_by_output_id(doc):
    doc.apply([{"op": "delete_node", "node": "@z"}])
    assert node_names(doc) == ["conv", "relu", "ident", "add"]
    assert [o.name for o in doc.model.graph.output] == ["y"]


def test_delete_reconnect_keeps_function(doc):
    feeds = feeds_for(doc.model)
    expected = run(doc.model, feeds)
    doc.apply([{"op": "delete_node", "node": "ident", "reconnect": True}])
    assert node_names(doc) == ["conv", "relu", "add", "@z"]
    assert list(doc.model.graph.node[2].input) == ["relu_out", "C"]
    got = run(doc.model, feeds)
    np.testing.assert_array_equal(got["y"], expected["y"])


def test_reconnect_refused_for_two_data_inputs(doc):
    before = snapshot(doc)
    doc.apply([{"op": "add_node", "op_type": "Mul", "name": "mul", "inputs": ["relu_out", "z"], "outputs": ["m"]}])
    before = snapshot(doc)
    with pytest.raises(EditError, match="exactly one data input"):
        doc.apply([{"op": "delete_node", "node": "mul", "reconnect": True}])
    assert doc.model == before


def test_delete_everything_refused(doc):
    before = snapshot(doc)
    with pytest.raises(EditError, match="no outputs"):
        doc.apply([{"op": "delete_node", "node": "conv", "descendants": True}])
    assert doc.model == before


def test_unknown_node_names_it(doc):
    before = snapshot(doc)
    with pytest.raises(NotFoundError, match="no node 'nope'") as err:
        doc.apply([{"op": "rename_node", "node": "nope", "to": "x"}])
    assert err.value.code == "unknown_node"
    assert doc.model == before


def test_rename_node_exact(doc):
    expected = snapshot(doc)
    expected.graph.node[1].name = "activation"
    doc.apply([{"op": "rename_node", "node": "relu", "to": "activation"}])
    assert doc.model == expected
    with pytest.raises(EditError, match="already exists"):
        doc.apply([{"op": "rename_node", "node": "conv", "to": "activation"}])
    doc.undo()
    assert doc.model.graph.node[1].name == "relu"


def test_duplicate_names_are_addressed_by_output(tmp_path):
    model = chain_model()
    model.graph.node[1].name = "dup"
    model.graph.node[2].name = "dup"
    doc = doc_of(model, tmp_path)
    with pytest.raises(NotFoundError, match="used by 2 nodes") as err:
        doc.apply([{"op": "rename_node", "node": "dup", "to": "x"}])
    assert "@relu_out" in err.value.message
    doc.apply([{"op": "rename_node", "node": "@id_out", "to": "x"}])
    assert [n.name for n in doc.model.graph.node][:3] == ["conv", "dup", "x"]


def test_set_node_input_rewires_and_reorders(doc):
    # make `relu` read z (produced by the later Sigmoid): the node must move after it
    doc.apply([{"op": "set_node_input", "node": "relu", "index": 0, "tensor": "z"}])
    order = node_names(doc)
    assert order.index("relu") > order.index("@z")
    assert order.index("ident") > order.index("relu") and order.index("add") > order.index("ident")
    onnx.checker.check_model(doc.model)
    doc.undo()
    assert node_names(doc) == ["conv", "relu", "ident", "add", "@z"]


def test_set_node_input_refuses_cycle(doc):
    before = snapshot(doc)
    with pytest.raises(EditError, match="cycle"):
        doc.apply([{"op": "set_node_input", "node": "relu", "index": 0, "tensor": "y"}])
    assert doc.model == before


def test_set_node_input_unknown_tensor(doc):
    with pytest.raises(NotFoundError, match="no tensor 'ghost'"):
        doc.apply([{"op": "set_node_input", "node": "relu", "index": 0, "tensor": "ghost"}])


def test_add_node_exact_position_and_schema(doc):
    doc.apply(
        [
            {
                "op": "add_node",
                "op_type": "LeakyRelu",
                "name": "leaky",
                "inputs": ["relu_out"],
                "outputs": ["leaky_out"],
                "attributes": {"alpha": 0.2},
            }
        ]
    )
    node = doc.model.graph.node[2]
    assert node == helper.make_node("LeakyRelu", ["relu_out"], ["leaky_out"], name="leaky", alpha=0.2)
    doc.apply([{"op": "add_output", "tensor": "leaky_out"}])
    out = run(doc.model, feeds_for(doc.model))
    assert out["leaky_out"].shape == (1, 4, 8, 8)


def test_add_node_refusals(doc):
    before = snapshot(doc)
    with pytest.raises(EditError, match="no operator 'Relux'"):
        doc.apply([{"op": "add_node", "op_type": "Relux", "inputs": ["x"], "outputs": ["q"]}])
    with pytest.raises(EditError, match="has no attribute 'beta'"):
        doc.apply(
            [{"op": "add_node", "op_type": "LeakyRelu", "inputs": ["x"], "outputs": ["q"], "attributes": {"beta": 1.0}}]
        )
    with pytest.raises(EditError, match="already exists"):
        doc.apply([{"op": "add_node", "op_type": "Relu", "inputs": ["x"], "outputs": ["y"]}])
    with pytest.raises(EditError, match="input size 2"):
        doc.apply([{"op": "add_node", "op_type": "Relu", "inputs": ["x", "z"], "outputs": ["q"]}])
    assert doc.model == before


def test_add_custom_domain_node_adds_opset(doc):
    doc.apply(
        [
            {
                "op": "add_node",
                "op_type": "MyOp",
                "domain": "com.example",
                "inputs": ["relu_out"],
                "outputs": ["custom"],
                "attributes": {"mode": "fast", "k": 3, "scales": [1.0, 2.5]},
            }
        ]
    )
    assert {o.domain: o.version for o in doc.model.opset_import} == {"": 17, "com.example": 1}
    node = next(n for n in doc.model.graph.node if n.op_type == "MyOp")
    assert node.domain == "com.example"
    kinds = {a.name: a.type for a in node.attribute}
    assert kinds == {"mode": AttributeProto.STRING, "k": AttributeProto.INT, "scales": AttributeProto.FLOATS}
    onnx.checker.check_model(doc.model)
    doc.undo()
    assert {o.domain for o in doc.model.opset_import} == {""}


@pytest.mark.parametrize(
    "name,value,expected",
    [
        ("pads", [0, 0, 0, 0], [0, 0, 0, 0]),
        ("strides", [2, 2], [2, 2]),
        ("auto_pad", "SAME_UPPER", b"SAME_UPPER"),
        ("group", 1, 1),
    ],
)
def test_set_attribute_types_from_schema(doc, name, value, expected):
    if name == "auto_pad":
        doc.apply([{"op": "remove_attribute", "node": "conv", "name": "pads"}])
    doc.apply([{"op": "set_attribute", "node": "conv", "name": name, "value": value}])
    attr = next(a for a in doc.model.graph.node[0].attribute if a.name == name)
    assert helper.get_attribute_value(attr) == expected
    onnx.checker.check_model(doc.model)


def test_set_attribute_wrong_type_refused(doc):
    before = snapshot(doc)
    with pytest.raises(EditError, match="INTS|ints"):
        doc.apply([{"op": "set_attribute", "node": "conv", "name": "strides", "value": "two"}])
    with pytest.raises(EditError, match="has no attribute"):
        doc.apply([{"op": "set_attribute", "node": "conv", "name": "stride", "value": [1, 1]}])
    assert doc.model == before


def test_set_tensor_attribute(tmp_path):
    model = chain_model()
    model.graph.node.insert(
        0,
        helper.make_node(
            "Constant", [], ["k"], name="const", value=helper.make_tensor("v", TensorProto.FLOAT, [2], [1, 2])
        ),
    )
    model.graph.output.append(helper.make_tensor_value_info("k", TensorProto.FLOAT, [2]))
    doc = doc_of(model, tmp_path)
    doc.apply(
        [
            {
                "op": "set_attribute",
                "node": "const",
                "name": "value",
                "value": {"dtype": "float32", "value": [3.0, 4.0, 5.0]},
            }
        ]
    )
    out = run(doc.model, feeds_for(doc.model))
    np.testing.assert_array_equal(out["k"], [3, 4, 5])


def test_remove_required_attribute_refused(tmp_path):
    model = chain_model()
    model.graph.node.append(helper.make_node("Cast", ["y"], ["y16"], name="cast", to=TensorProto.FLOAT16))
    model.graph.output.append(helper.make_tensor_value_info("y16", TensorProto.FLOAT16, [1, 4, 8, 8]))
    doc = doc_of(model, tmp_path)
    before = snapshot(doc)
    with pytest.raises(EditError, match="Required attribute 'to'"):
        doc.apply([{"op": "remove_attribute", "node": "cast", "name": "to"}])
    assert doc.model == before
    with pytest.raises(NotFoundError, match="no attribute 'nothing'"):
        doc.apply([{"op": "remove_attribute", "node": "conv", "name": "nothing"}])


def test_batch_is_all_or_nothing_and_keeps_redo(doc):
    doc.apply([{"op": "rename_node", "node": "relu", "to": "r1"}])
    doc.undo()
    before = snapshot(doc)
    with pytest.raises(EditError, match="edit 1"):
        doc.apply(
            [{"op": "rename_node", "node": "conv", "to": "c1"}, {"op": "rename_node", "node": "missing", "to": "c2"}]
        )
    assert doc.model == before
    assert len(doc.history.undone) == 1
    doc.redo()
    assert doc.model.graph.node[1].name == "r1"


def test_unknown_op_and_bad_fields(doc):
    with pytest.raises(EditError, match="unknown edit op 'explode'"):
        doc.apply([{"op": "explode"}])
    with pytest.raises(EditError, match="field 'to' must be a string"):
        doc.apply([{"op": "rename_node", "node": "relu", "to": 3}])
    with pytest.raises(EditError, match="missing field 'to'"):
        doc.apply([{"op": "rename_node", "node": "relu"}])
