"""The model guard through the real HTTP API: a model that parses but holds what the service cannot
handle (names that are not UTF-8, dims that do not match the data, element counts no integer holds)
is refused at upload with 422 naming the field; one just inside each limit is accepted and every
route answers it.

Strings that are not UTF-8 cannot be set through protobuf's Python API: the models are built with
ASCII markers of the same length, and the serialized bytes are edited.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import ModelProto, TensorProto, helper, numpy_helper

from .conftest import error_of, upload

BAD = b"\xff\xfe"  # never valid in UTF-8


def guard_model(input_dims: list | None = None, names: dict[str, str] | None = None) -> ModelProto:
    """y = (x + W) through an If whose branches hold a node and an initializer of their own, plus a
    Constant and a local function: every place the guard has to reach holds a name (the marker
    names in capitals can be replaced by `names`)."""
    n = (names or {}).get
    w = numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(2, 2), n("WGHT", "WGHT"))

    def branch(name: str, value: float) -> onnx.GraphProto:
        c = numpy_helper.from_array(np.full((2, 2), value, np.float32), f"C{name}")
        return helper.make_graph(
            [helper.make_node("Add", ["s", f"C{name}"], [f"o{name}"], name=n(f"SUB{name}", f"SUB{name}"))],
            f"b{name}",
            [],
            [helper.make_tensor_value_info(f"o{name}", TensorProto.FLOAT, [2, 2])],
            [c],
        )

    x, out = n("INPT", "INPT"), n("OUTP", "OUTP")
    nodes = [
        helper.make_node("Add", [x, w.name], ["s"], name=n("NODE", "NODE")),
        helper.make_node("Constant", [], ["flag"], name="flagc", value=numpy_helper.from_array(np.array(True), "FLAG")),
        helper.make_node("If", ["flag"], [out], name="iff", then_branch=branch("T", 1.0), else_branch=branch("E", 2.0)),
        helper.make_node("Twice", ["s"], ["f"], name="call", domain="local"),
    ]
    twice = helper.make_function(
        "local",
        "Twice",
        ["a"],
        ["b"],
        [helper.make_node("Add", ["a", "a"], ["b"], name=n("FUNN", "FUNN"))],
        [helper.make_opsetid("", 17)],
    )
    dims = input_dims or [n("DIMP", "DIMP"), 2]
    graph = helper.make_graph(
        nodes,
        n("GRPH", "GRPH"),
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, dims)],
        [
            helper.make_tensor_value_info(out, TensorProto.FLOAT, [2, 2]),
            helper.make_tensor_value_info("f", TensorProto.FLOAT, [2, 2]),
        ],
        [w],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)], functions=[twice]
    )
    helper.set_model_props(model, {"KEY1": n("VALU", "VALU")})
    return model


def patched(model: ModelProto, marker: bytes, replacement: bytes) -> bytes:
    """The serialized model with every `marker` replaced by bytes of the same length."""
    data = model.SerializeToString()
    assert marker in data and len(replacement) == len(marker)
    return data.replace(marker, replacement)


def upload_bytes(client: TestClient, data: bytes, *extra: tuple[str, bytes]) -> object:
    files = [("file", ("m.onnx", data))] + [("data", item) for item in extra]
    return client.post("/api/sessions", files=files)


# (name, marker, field the guard names, words its message has)
NOT_UTF8 = [
    ("node name", b"NODE", "graph.node[0].name", "name = b'N\\xff\\xfeE'"),
    ("initializer name", b"WGHT", "graph.node[0].input[1]", "node 'NODE'"),
    ("input name", b"INPT", "graph.node[0].input[0]", "node 'NODE'"),
    ("output name", b"OUTP", "graph.node[2].output[0]", "node 'iff'"),
    ("graph name", b"GRPH", "graph.name", "not valid UTF-8"),
    ("subgraph node name", b"SUBT", "graph.node[2].attribute[1].g.node[0].name", "graph 'bT'"),
    ("function node name", b"FUNN", "functions[0].node[0].name", "not valid UTF-8"),
    ("dim name", b"DIMP", "graph.input[0].type.tensor_type.shape.dim[0].dim_param", "input 'INPT'"),
    ("metadata value", b"VALU", "metadata_props[0].value", "not valid UTF-8"),
    ("constant tensor name", b"FLAG", "graph.node[1].attribute[0].t.name", "attribute 'value'"),
]


@pytest.mark.parametrize("what, marker, field, words", NOT_UTF8, ids=[c[0] for c in NOT_UTF8])
def test_strings_that_are_not_utf8_are_refused_naming_the_field(
    client: TestClient, what: str, marker: bytes, field: str, words: str
) -> None:
    data = patched(guard_model(), marker, marker[:1] + BAD + marker[3:])
    err = error_of(upload_bytes(client, data), 422, "unsupported_model")
    assert err["details"]["field"] == field, err
    assert "not valid UTF-8" in err["message"] and words in err["message"], err
    assert client.app.state.store.sessions.exists() and not any(client.app.state.store.sessions.iterdir())


def test_non_ascii_names_just_inside_pass_and_every_route_answers(client: TestClient, tmp_path: Path) -> None:
    """Valid UTF-8 in every place of the cases above: Chinese names, an accented dim name."""
    names = {
        "NODE": "节点",
        "WGHT": "权重",
        "INPT": "入口",
        "OUTP": "出口",
        "GRPH": "图",
        "SUBT": "子图",
        "FUNN": "函数",
        "DIMP": "dé",
        "VALU": "值",
    }
    sid = upload(client, _save(guard_model(names=names), tmp_path / "m.onnx"))
    for route in ("", "/graph", "/shapes", "/layout", "/script", "/history", "/operators", "/nodes/节点"):
        assert client.get(f"/api/sessions/{sid}{route}").status_code == 200, route
    assert client.post(f"/api/sessions/{sid}/run", data={"dims": json.dumps({"dé": 2})}).status_code == 200
    assert client.post(f"/api/sessions/{sid}/compare").status_code == 200


def _initializer(model: ModelProto) -> TensorProto:
    return model.graph.initializer[0]


def _constant(model: ModelProto) -> TensorProto:
    return model.graph.node[1].attribute[0].t


def _branch_initializer(model: ModelProto) -> TensorProto:
    return model.graph.node[2].attribute[1].g.initializer[0]  # then_branch (attributes sort by name)


def _huge_dims(tensor: TensorProto) -> None:
    del tensor.dims[:]
    tensor.dims.extend([1 << 62, 4])
    tensor.raw_data = b"\0" * 16


def _short_raw(tensor: TensorProto) -> None:
    tensor.raw_data = tensor.raw_data[:-4]


def _short_typed(tensor: TensorProto) -> None:
    values = numpy_helper.to_array(tensor).ravel()[:-1]
    tensor.ClearField("raw_data")
    tensor.float_data.extend(values.tolist())


def _negative_dim(tensor: TensorProto) -> None:
    del tensor.dims[:]
    tensor.dims.extend([-2, -2])


def _rank_65(tensor: TensorProto) -> None:
    del tensor.dims[:]
    tensor.dims.extend([1] * 62 + [2, 2, 1])


def _input_rank_65(model: ModelProto) -> None:
    model.graph.input[0].type.tensor_type.shape.dim.extend([model.graph.input[0].type.tensor_type.shape.dim[0]] * 63)


def _strings_not_utf8(tensor: TensorProto) -> None:
    tensor.data_type = TensorProto.STRING
    tensor.ClearField("raw_data")
    tensor.string_data.extend([b"a", b"b", BAD, b"d"])


def _segment(tensor: TensorProto) -> None:
    tensor.segment.begin, tensor.segment.end = 0, 2


def _unknown_type(tensor: TensorProto) -> None:
    tensor.data_type = 999


def _huge_input(model: ModelProto) -> None:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_value, dims[1].dim_value = 1 << 32, 1 << 32  # 2^64 elements: int64 arithmetic wraps to 0


def _negative_input(model: ModelProto) -> None:
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -7


def _huge_output(model: ModelProto) -> None:
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 1 << 62


BAD_VALUES: list[tuple[str, Callable[[ModelProto], TensorProto] | None, Callable, str, str]] = [
    (
        "initializer dims over 2^62",
        _initializer,
        _huge_dims,
        "graph.initializer[0].dims",
        "initializer 'WGHT' (graph.initializer[0]) declares dims [4611686018427387904, 4]",
    ),
    ("initializer raw data short", _initializer, _short_raw, "graph.initializer[0]", "need 16 bytes, but holds 12"),
    ("initializer typed data short", _initializer, _short_typed, "graph.initializer[0]", "holds 3"),
    ("initializer negative dims", _initializer, _negative_dim, "graph.initializer[0].dims", "negative"),
    ("initializer unknown type", _initializer, _unknown_type, "graph.initializer[0].data_type", "999"),
    ("initializer rank over 64", _initializer, _rank_65, "graph.initializer[0].dims", "has 65 dims"),
    (
        "string values not UTF-8",
        _initializer,
        _strings_not_utf8,
        "graph.initializer[0].string_data[2]",
        "string 2 = b'\\xff\\xfe'",
    ),
    ("tensor segment", _initializer, _segment, "graph.initializer[0].segment", "segment"),
    ("input rank over 64", None, _input_rank_65, "graph.input[0].type.tensor_type.shape", "of 65 dims"),
    ("constant tensor dims over 2^62", _constant, _huge_dims, "graph.node[1].attribute[0].t.dims", "tensor 'FLAG'"),
    (
        "subgraph initializer short",
        _branch_initializer,
        _short_raw,
        "graph.node[2].attribute[1].g.initializer[0]",
        "initializer 'CT'",
    ),
    ("input dims overflow int64", None, _huge_input, "graph.input[0].type.tensor_type.shape", "input 'INPT'"),
    ("input dim negative", None, _negative_input, "graph.input[0].type.tensor_type.shape.dim[0]", "-7"),
    ("output dims over 2^62", None, _huge_output, "graph.output[0].type.tensor_type.shape", "output 'OUTP'"),
]


@pytest.mark.parametrize("what, target, damage, field, words", BAD_VALUES, ids=[c[0] for c in BAD_VALUES])
def test_dims_sizes_and_types_nothing_can_handle_are_refused(
    client: TestClient, what: str, target, damage, field: str, words: str
) -> None:
    model = guard_model(input_dims=[2, 2])
    damage(target(model) if target else model)
    err = error_of(upload_bytes(client, model.SerializeToString()), 422, "unsupported_model")
    assert err["details"]["field"] == field, err
    assert words in err["message"], err


def test_external_data_shorter_than_its_dims_is_refused(client: TestClient) -> None:
    model = guard_model(input_dims=[2, 2])
    weight = model.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "w.bin"), ("offset", "0"), ("length", "12")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    err = error_of(upload_bytes(client, model.SerializeToString(), ("w.bin", b"\0" * 16)), 422, "unsupported_model")
    assert err["details"]["field"] == "graph.initializer[0]" and "need 16 bytes, but holds 12" in err["message"]
    weight.external_data[2].value = "16"  # just right
    assert upload_bytes(client, model.SerializeToString(), ("w.bin", b"\0" * 16)).status_code == 201


def test_dims_just_inside_the_limits_pass_and_the_run_guard_refuses_them(client: TestClient, tmp_path: Path) -> None:
    """2^62 elements exactly, and -1 for an unknown dim, are accepted; /run refuses 2^62 elements with
    413 before allocating, and runs the -1 input as 1."""
    model = guard_model(input_dims=[1 << 31, 1 << 31])
    model.graph.initializer[0].dims[:] = [2, 2]
    sid = upload(client, _save(model, tmp_path / "edge.onnx"))
    for route in ("/graph", "/shapes", "/layout"):
        assert client.get(f"/api/sessions/{sid}{route}").status_code == 200, route
    err = error_of(client.post(f"/api/sessions/{sid}/run"), 413, "too_large")
    assert "4,611,686,018,427,387,904 elements" in err["message"]

    sid = upload(client, _save(guard_model(input_dims=[-1, 2]), tmp_path / "unknown.onnx"))
    assert client.post(f"/api/sessions/{sid}/run").status_code == 200


def test_rank_64_just_inside_runs_everywhere(client: TestClient, tmp_path: Path) -> None:
    """numpy's most dimensions: an initializer and an input of rank 64 go through every route."""
    w = helper.make_tensor("W", TensorProto.FLOAT, [1] * 62 + [2, 2], np.ones(4, np.float32).tobytes(), raw=True)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1] * 62 + [2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1] * 62 + [2, 2])
    graph = helper.make_graph([helper.make_node("Add", ["x", "W"], ["y"], name="add")], "g", [x], [y], [w])
    sid = upload(
        client, _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "rank64.onnx")
    )
    for route in ("/graph", "/shapes", "/layout", "/tensors/W.npy", "/weight-view/W", "/nodes/add"):
        assert client.get(f"/api/sessions/{sid}{route}").status_code == 200, route
    assert client.post(f"/api/sessions/{sid}/run").status_code == 200
    error_of(
        client.post(
            f"/api/sessions/{sid}/edits", json={"edits": [{"op": "set_shape", "tensor": "x", "shape": [1] * 65}]}
        ),
        422,
        "bad_shape",
    )


def test_run_element_guard_counts_in_python_integers(client: TestClient, tmp_path: Path) -> None:
    """Four named dims of 65536 are 2^64 elements, which an int64 product wraps round to 0."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["a", "a", "a", "a"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "a", "a", "a"])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "g", [x], [y])
    sid = upload(
        client, _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "named.onnx")
    )
    for route in ("run", "compare"):
        err = error_of(
            client.post(f"/api/sessions/{sid}/{route}", data={"dims": json.dumps({"a": 65536})}), 413, "too_large"
        )
        assert "18,446,744,073,709,551,616 elements" in err["message"]
    assert client.post(f"/api/sessions/{sid}/run", data={"dims": json.dumps({"a": 3})}).status_code == 200


def _save(model: ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path
