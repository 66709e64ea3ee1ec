"""Numbers a request carries that nothing can use: NaN and infinities (Python's JSON parser accepts
them, and 1e999 is infinity), integers beyond 64 bits, negative seeds. Each is refused with 4xx in
the error shape, naming the field, and leaves the session as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper, numpy_helper

from app.server.schemas.common import MAX_SEED
from tests.quant.models import conv_net

from .conftest import error_of, upload
from .test_edits import state

NAN, INF = float("nan"), float("inf")


@pytest.fixture
def sid(client: TestClient, tmp_path: Path) -> str:
    """y = LeakyRelu(x + W) on x of shape [N, 2]."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "W"], ["a"], name="add"),
            helper.make_node("LeakyRelu", ["a"], ["y"], name="lr", alpha=0.1),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(np.ones(2, np.float32), "W")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    return upload(client, tmp_path / "m.onnx")


def post_raw(client: TestClient, url: str, body: Any) -> Any:
    """json.dumps writes NaN and Infinity as Python's parser reads them back."""
    return client.post(url, content=json.dumps(body), headers={"content-type": "application/json"})


ADD_NODE = {"op": "add_node", "op_type": "LeakyRelu", "inputs": ["a"], "outputs": ["r"], "name": "rr"}
BAD_EDITS = [
    ({"op": "set_attribute", "node": "lr", "name": "alpha", "value": NAN}, "value"),
    ({"op": "set_attribute", "node": "lr", "name": "alpha", "value": -INF}, "value"),
    ({**ADD_NODE, "attributes": {"alpha": INF}}, "attributes.alpha"),
    ({"op": "set_initializer", "name": "W", "value": [1.0, NAN]}, "value[1]"),
    (
        {"op": "set_attribute", "node": "lr", "name": "t", "value": {"dtype": "float32", "value": [[INF]]}},
        "value.value[0][0]",
    ),
    ({"op": "set_shape", "tensor": "x", "shape": [NAN, 2]}, "shape[0]"),
    ({"op": "fix_dim", "dim": "N", "value": INF}, "value"),
    ({"op": "set_node_input", "node": "lr", "index": NAN, "tensor": "x"}, "index"),
    ({"op": "rename_node", "node": "add", "to": "z", "note": [NAN]}, "note[0]"),
    ({"op": "set_attribute", "node": "lr", "name": "alpha", "value": 1 << 70}, "value"),
    ({"op": "set_node_input", "node": "lr", "index": 1 << 64, "tensor": "x"}, "index"),
    ({"op": "set_attribute", "node": "lr", "name": "k", "type": "ints", "value": [1, -(1 << 63) - 1]}, "value[1]"),
]


@pytest.mark.parametrize("bad, field", BAD_EDITS, ids=[f"{e['op']}:{f}" for e, f in BAD_EDITS])
def test_edits_with_non_finite_or_oversized_numbers_are_refused(
    client: TestClient, sid: str, bad: dict, field: str
) -> None:
    before = state(client, sid)
    err = error_of(post_raw(client, f"/api/sessions/{sid}/edits", {"edits": [bad]}), 422, "bad_number")
    assert err["details"]["field"] == field and f"field '{field}'" in err["message"], err
    batch = [{"op": "rename_node", "node": "add", "to": "renamed"}, bad]  # all or nothing
    err = error_of(post_raw(client, f"/api/sessions/{sid}/edits", {"edits": batch}), 422, "bad_number")
    assert err["message"].startswith("edit 1 (") and err["details"]["edit_index"] == 1
    assert state(client, sid) == before


def test_an_unencodable_value_in_error_details_still_answers_in_the_error_shape(client: TestClient, sid: str) -> None:
    for op in (NAN, INF, [NAN], {"k": -INF}):
        err = error_of(post_raw(client, f"/api/sessions/{sid}/edits", {"edits": [{"op": op}]}), 422, "unknown_op")
        assert "nan" in json.dumps(err["details"]) or "inf" in json.dumps(err["details"])


def test_1e999_in_a_hand_written_body_is_infinity_and_refused(client: TestClient, sid: str) -> None:
    body = '{"edits": [{"op": "set_attribute", "node": "lr", "name": "alpha", "value": 1e999}]}'
    r = client.post(f"/api/sessions/{sid}/edits", content=body, headers={"content-type": "application/json"})
    assert error_of(r, 422, "bad_number")["details"]["field"] == "value"


def test_numbers_just_inside_are_applied(client: TestClient, sid: str) -> None:
    edits = [
        {"op": "set_attribute", "node": "lr", "name": "alpha", "value": 3.4e38},
        {**ADD_NODE, "op_type": "Custom", "domain": "my", "attributes": {"k": [-(1 << 63), (1 << 63) - 1]}},
        {"op": "set_initializer", "name": "W", "value": [-3.4028234663852886e38, 0.0]},
    ]  # float32's largest
    r = post_raw(client, f"/api/sessions/{sid}/edits", {"edits": edits})
    assert r.status_code == 200, r.text
    assert client.get(f"/api/sessions/{sid}/history").status_code == 200


def test_scripts_are_held_to_the_same_numbers(client: TestClient, tmp_path: Path, sid: str) -> None:
    model = client.get(f"/api/sessions/{sid}/model").content
    script = json.dumps({"edits": [{"op": "set_attribute", "node": "lr", "name": "alpha", "value": NAN}]})
    err = error_of(
        client.post("/api/apply", files=[("file", ("m.onnx", model))], data={"script": script}), 422, "bad_number"
    )
    assert err["details"]["field"] == "value"


@pytest.mark.parametrize("route", ["run", "compare"])
@pytest.mark.parametrize("seed", ["-1", str(-(1 << 70)), str(MAX_SEED + 1), "1.5", "x"])
def test_run_and_compare_refuse_seeds_numpy_cannot_take(client: TestClient, sid: str, route: str, seed: str) -> None:
    err = error_of(client.post(f"/api/sessions/{sid}/{route}", data={"seed": seed}), 422, "bad_field")
    assert "seed" in err["message"]


@pytest.mark.parametrize("route", ["run", "compare"])
def test_seeds_just_inside_run(client: TestClient, sid: str, route: str) -> None:
    for seed in ("0", str(MAX_SEED)):
        assert client.post(f"/api/sessions/{sid}/{route}", data={"seed": seed}).status_code == 200


def test_quant_settings_refuse_negative_seeds_nan_and_empty_sizes(client: TestClient, tmp_path: Path) -> None:
    onnx.save(conv_net(input_dims=[1, 3, "h", "w"]), tmp_path / "dyn.onnx")
    qid = upload(client, tmp_path / "dyn.onnx")
    shapes = '{"x": [1, 3, 8, 8]}'
    for fields, word in (
        ({"seed": "-1"}, "seed"),
        ({"seed": str(MAX_SEED + 1)}, "seed"),
        ({"target_margin_db": "NaN"}, "target_margin_db"),
        ({"settings": '{"target_sqnr_db": Infinity}'}, "target_sqnr_db"),
        ({"mean": "NaN,1,2"}, "mean"),
        ({"size": "0x8"}, "size"),
    ):
        err = error_of(
            client.post(f"/api/sessions/{qid}/quant", data={"random": "1", "shapes": shapes, **fields}),
            422,
            "bad_settings",
        )
        assert word in err["message"], err
    r = client.post(
        f"/api/sessions/{qid}/quant",
        data={"random": "1", "shapes": shapes, "seed": str(MAX_SEED), "end_to_end": "false"},
    )
    assert r.status_code == 202, r.text
