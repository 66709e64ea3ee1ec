"""Moving data in and out: downloads, initializer .npy get/put, runs, comparisons, stateless apply."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from urllib.parse import quote

import numpy as np
import onnx
import onnxruntime as ort
from fastapi.testclient import TestClient

from .conftest import error_of, upload
from .models import ODD_NAME, odd_names_model
from .test_edits import edit, state


def tensor_url(sid: str, name: str) -> str:
    return f"/api/sessions/{sid}/tensors/{quote(name, safe='')}.npy"


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_unedited_download_equals_the_upload(client: TestClient, fixture_model) -> None:
    for name in ("ppocrv4_det", "silero_vad_v6"):
        path = fixture_model(name)
        sid = upload(client, path)
        r = client.get(f"/api/sessions/{sid}/model")
        assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
        assert (
            r.headers["content-disposition"]
            == f"attachment; filename=\"{name}.edited.onnx\"; filename*=UTF-8''{name}.edited.onnx"
        )
        assert onnx.load_from_string(r.content) == onnx.load(str(path))


def test_edited_download_has_the_edit_and_runs(client: TestClient, fixture_model, tmp_path: Path) -> None:
    sid = upload(client, fixture_model("ppocr_cls_v2"))
    first = client.get(f"/api/sessions/{sid}/graph").json()["graph"]["nodes"][0]["id"]
    edit(client, sid, {"op": "rename_node", "node": first, "to": "stem"})
    model = tmp_path / "m.onnx"
    model.write_bytes(client.get(f"/api/sessions/{sid}/model").content)
    assert onnx.load(str(model)).graph.node[0].name == "stem"
    onnx.checker.check_model(str(model))
    ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])


def test_model_with_external_data_downloads_as_zip(
    client: TestClient, external_model: list[Path], tmp_path: Path
) -> None:
    sid = upload(client, *external_model)
    r = client.get(f"/api/sessions/{sid}/model")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert sorted(zf.namelist()) == ["minilm.edited.onnx", "minilm.edited.onnx.data"]
        zf.extractall(tmp_path)
    got = onnx.load(str(tmp_path / "minilm.edited.onnx"))
    want = onnx.load(str(external_model[0]))
    assert [n for n in got.graph.node] == [n for n in want.graph.node]
    for a, b in zip(got.graph.initializer, want.graph.initializer, strict=True):
        assert np.array_equal(onnx.numpy_helper.to_array(a), onnx.numpy_helper.to_array(b))


def test_tensor_names_with_slashes_colons_and_spaces(client: TestClient, tmp_path: Path) -> None:
    sid = upload(client, odd_names_model(tmp_path / "odd.onnx"))
    r = client.get(tensor_url(sid, ODD_NAME))
    assert r.status_code == 200, r.text
    assert np.array_equal(np.load(io.BytesIO(r.content)), np.arange(6, dtype=np.float32).reshape(2, 3))
    new = np.full((2, 3), 7, dtype=np.float32)
    r = client.put(tensor_url(sid, ODD_NAME), content=npy(new), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.json()["changes"]["lists_changed"] == ["initializer"]
    assert np.array_equal(np.load(io.BytesIO(client.get(tensor_url(sid, ODD_NAME)).content)), new)
    assert client.get(f"/api/sessions/{sid}/history").json()["done"][0]["op"] == "set_initializer"
    client.post(f"/api/sessions/{sid}/undo")
    assert np.load(io.BytesIO(client.get(tensor_url(sid, ODD_NAME)).content))[1, 2] == 5


def test_node_ids_with_slashes_in_the_path(client: TestClient, tmp_path: Path) -> None:
    sid = upload(client, odd_names_model(tmp_path / "odd.onnx"))
    node = client.get(f"/api/sessions/{sid}/nodes/{quote('/model.23/Add', safe='')}")
    assert node.status_code == 200, node.text
    assert node.json()["op_type"] == "Add" and node.json()["inputs"] == ["x", ODD_NAME]
    error_of(client.get(f"/api/sessions/{sid}/nodes/{quote('/model.23/Mul', safe='')}"), 404, "unknown_node")


def test_string_initializers_download_as_unicode_npy(client: TestClient, tmp_path: Path) -> None:
    labels = onnx.helper.make_tensor("labels", onnx.TensorProto.STRING, [3], [b"cat", b"dog", "\u00e9t\u00e9".encode()])
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["labels"], ["y"], name="id")],
        "s",
        [],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.STRING, [3])],
        [labels],
    )
    path = tmp_path / "s.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), path)
    sid = upload(client, path)
    r = client.get(tensor_url(sid, "labels"))
    assert r.status_code == 200, r.text
    assert np.load(io.BytesIO(r.content)).tolist() == ["cat", "dog", "\u00e9t\u00e9"]


def test_put_tensor_refusals_leave_the_session_unchanged(client: TestClient, tmp_path: Path) -> None:
    sid = upload(client, odd_names_model(tmp_path / "odd.onnx"))
    url = tensor_url(sid, ODD_NAME)
    octet = {"content-type": "application/octet-stream"}
    before = state(client, sid)
    err = error_of(client.put(url, content=npy(np.zeros((2, 3), np.int64)), headers=octet), 422, "wrong_dtype")
    assert "float32" in err["message"]
    err = error_of(client.put(url, content=npy(np.zeros((3, 2), np.float32)), headers=octet), 422, "wrong_shape")
    assert "[2, 3]" in err["message"]
    error_of(client.put(url, content=b"not an npy file", headers=octet), 422, "bad_npy")
    huge = io.BytesIO()  # a header claiming 10^12 float32 values, followed by 64 bytes
    np.lib.format.write_array_header_1_0(huge, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    err = error_of(client.put(url, content=huge.getvalue() + b"\0" * 64, headers=octet), 413, "too_large")
    assert "1,000,000,000,000" in err["message"]
    lying = npy(np.zeros((2, 3), np.float32))[:-8]  # header says 24 bytes, 16 follow
    error_of(client.put(url, content=lying, headers=octet), 422, "bad_npy")
    error_of(client.put(url, json={"a": 1}), 415, "unsupported_media_type")
    error_of(
        client.put(tensor_url(sid, "nope"), content=npy(np.zeros(1, np.float32)), headers=octet), 404, "unknown_tensor"
    )
    error_of(client.get(tensor_url(sid, "nope")), 404, "unknown_tensor")
    error_of(client.get(f"/api/sessions/{sid}/tensors/{quote(ODD_NAME, safe='')}"), 404)  # no .npy suffix
    assert state(client, sid) == before


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_npy_format_3_is_accepted_for_tensors_and_run_inputs(client: TestClient, tmp_path: Path) -> None:
    """numpy writes .npy format 3.0 for utf-8 field names; both upload paths read it like 1.0 and 2.0."""
    sid = upload(client, odd_names_model(tmp_path / "odd.onnx"))
    weight = np.full((2, 3), 0.5, np.float32)
    body = io.BytesIO()
    np.lib.format.write_array(body, weight, version=(3, 0))
    octet = {"content-type": "application/octet-stream"}
    r = client.put(tensor_url(sid, ODD_NAME), content=body.getvalue(), headers=octet)
    assert r.status_code == 200, r.text
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    inputs = io.BytesIO()
    with zipfile.ZipFile(inputs, "w") as archive, archive.open("x.npy", "w") as member:
        np.lib.format.write_array(member, x, version=(3, 0))
    r = client.post(f"/api/sessions/{sid}/run", files={"inputs": ("in.npz", inputs.getvalue())})
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(np.load(io.BytesIO(r.content))["y"], x + weight)


def test_run_on_uploaded_inputs_matches_onnxruntime(client: TestClient, fixture_model) -> None:
    path = fixture_model("ppocr_cls_v2")
    sid = upload(client, path)
    x = np.random.default_rng(0).standard_normal((1, 3, 48, 192)).astype(np.float32)
    r = client.post(f"/api/sessions/{sid}/run", files={"inputs": ("in.npz", _npz(x=x))})
    assert r.status_code == 200, r.text
    got = dict(np.load(io.BytesIO(r.content)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = session.run(None, {"x": x})
    assert list(got) == [o.name for o in session.get_outputs()]
    np.testing.assert_allclose(got[session.get_outputs()[0].name], want[0], rtol=1e-5, atol=1e-6)


def test_run_outputs_named_like_savez_parameters(client: TestClient, tmp_path: Path) -> None:
    """Output names are the model's: 'file' and 'allow_pickle' come back like any other (numpy.savez
    takes names as keyword arguments, where these two are its own parameters)."""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["file"]), onnx.helper.make_node("Neg", ["x"], ["allow_pickle"])],
        "names",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
        [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [2]) for n in ("file", "allow_pickle")],
    )
    path = tmp_path / "names.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), path)
    sid = upload(client, path)
    x = np.array([1.5, -2.0], np.float32)
    r = client.post(f"/api/sessions/{sid}/run", files={"inputs": ("in.npz", _npz(x=x))})
    assert r.status_code == 200, r.text
    out = np.load(io.BytesIO(r.content))
    assert list(out) == ["file", "allow_pickle"]
    np.testing.assert_array_equal(out["file"], x)
    np.testing.assert_array_equal(out["allow_pickle"], -x)


def test_run_on_random_inputs_with_named_dims(client: TestClient, open_session) -> None:
    sid = open_session("minilm_l6_int8")
    r = client.post(f"/api/sessions/{sid}/run", data={"dims": json.dumps({"batch": 2, "sequence": 7}), "seed": "3"})
    assert r.status_code == 200, r.text
    out = np.load(io.BytesIO(r.content))
    assert out["last_hidden_state"].shape == (2, 7, 384)


def test_random_inputs_for_dims_exported_as_minus_one(client: TestClient, open_session) -> None:
    sid = open_session("ppocr_cls_v2")  # input x is [-1, 3, 48, 192]: found by the schemathesis run
    r = client.post(f"/api/sessions/{sid}/run")
    assert r.status_code == 200, r.text
    assert next(iter(np.load(io.BytesIO(r.content)).values())).shape[0] == 1


def test_sequence_and_map_outputs_come_as_json_text(client: TestClient, open_session) -> None:
    sid = open_session("logreg_iris")  # ZipMap: a sequence of {label: probability} maps
    r = client.post(f"/api/sessions/{sid}/run", data={"seed": "1"})
    assert r.status_code == 200, r.text
    out = np.load(io.BytesIO(r.content))  # allow_pickle=False: no object arrays inside
    maps = json.loads(str(out["probabilities"]))
    assert len(maps) == 3 and abs(sum(maps[0].values()) - 1) < 1e-5
    report = client.post(f"/api/sessions/{sid}/compare").json()
    assert report["all_equal"] is True and {o["name"] for o in report["outputs"]} == {"label", "probabilities"}


def test_run_refusals(client: TestClient, open_session) -> None:
    sid = open_session("ppocr_cls_v2")
    error_of(client.post(f"/api/sessions/{sid}/run", files={"inputs": ("in.npz", b"garbage")}), 422, "bad_npz")
    err = error_of(
        client.post(f"/api/sessions/{sid}/run", files={"inputs": ("in.npz", _npz(y=np.zeros(3)))}), 422, "bad_inputs"
    )
    assert "missing ['x']" in err["message"]
    err = error_of(
        client.post(
            f"/api/sessions/{sid}/run", files={"inputs": ("in.npz", _npz(x=np.zeros((1, 3, 48, 192), np.float64)))}
        ),
        422,
        "wrong_dtype",
    )
    assert "float32" in err["message"]
    error_of(client.post(f"/api/sessions/{sid}/run", data={"dims": "[1]"}), 422, "bad_field")
    error_of(client.post(f"/api/sessions/{sid}/run", data={"dims": json.dumps({"x": 10**12})}), 422, "bad_field")
    sid2 = open_session("minilm_l6_int8")
    err = error_of(
        client.post(f"/api/sessions/{sid2}/run", data={"dims": json.dumps({"batch": 100000, "sequence": 100000})}),
        413,
        "too_large",
    )
    assert "elements" in err["message"]


def test_compare_proves_an_edit_kept_the_function_or_not(client: TestClient, tmp_path: Path) -> None:
    sid = upload(client, odd_names_model(tmp_path / "odd.onnx"))
    x = np.ones((2, 3), np.float32)
    same = client.post(f"/api/sessions/{sid}/compare", files={"inputs": ("in.npz", _npz(x=x))}).json()
    assert same["all_equal"] is True and same["outputs"][0]["max_abs_diff"] == 0.0
    edit(client, sid, {"op": "rename_node", "node": "/model.23/Add", "to": "add"})
    renamed = client.post(f"/api/sessions/{sid}/compare").json()
    assert renamed["all_equal"] is True and renamed["outputs"][0]["cosine"] == 1.0
    edit(client, sid, {"op": "set_initializer", "name": ODD_NAME, "value": [[0, 1, 2], [3, 4, 50]]})
    changed = client.post(f"/api/sessions/{sid}/compare", files={"inputs": ("in.npz", _npz(x=x))}).json()
    out = changed["outputs"][0]
    assert changed["all_equal"] is False and out["max_abs_diff"] == 45.0 and 0 < out["cosine"] < 1


def test_stateless_apply(client: TestClient, fixture_model, external_model: list[Path], tmp_path: Path) -> None:
    path = fixture_model("ppocrv4_det")
    first = onnx.load(str(path)).graph.node[0]
    node_id = first.name or "@" + first.output[0]
    script = json.dumps(
        {
            "format": "onnx-workbench/edits",
            "version": 1,
            "edits": [{"op": "rename_node", "node": node_id, "to": "renamed"}],
        }
    )
    r = client.post(
        "/api/apply", files=[("file", (path.name, path.read_bytes())), ("script", ("edits.json", script.encode()))]
    )
    assert r.status_code == 200, r.text
    assert onnx.load_from_string(r.content).graph.node[0].name == "renamed"
    r = client.post("/api/apply", files=[("file", (path.name, path.read_bytes()))], data={"script": script})
    assert r.status_code == 200
    model, data = external_model
    r = client.post(
        "/api/apply",
        files=[
            ("file", (model.name, model.read_bytes())),
            ("data", (data.name, data.read_bytes())),
            ("script", ("e.json", b'{"edits": []}')),
        ],
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert list(client.app.state.store.staging.iterdir()) == []  # temporary files are gone after the answer


def test_stateless_apply_refusals(client: TestClient, fixture_model) -> None:
    path = fixture_model("logreg_iris")
    files = [("file", (path.name, path.read_bytes()))]
    error_of(client.post("/api/apply", files=files), 422, "missing_field")
    error_of(client.post("/api/apply", files=files, data={"script": "{oops"}), 422, "bad_script")
    error_of(client.post("/api/apply", files=files, data={"script": '{"format": "other"}'}), 422, "bad_script")
    err = error_of(
        client.post("/api/apply", files=files, data={"script": '{"edits": [{"op": "delete_node", "node": "ghost"}]}'}),
        422,
        "unknown_node",
    )
    assert "ghost" in err["message"]
    error_of(
        client.post("/api/apply", files={"file": ("x.onnx", b"nope")}, data={"script": "[]"}), 422, "invalid_model_file"
    )


def test_external_data_model_made_static_downloads_fully_static(
    client: TestClient, external_model: list[Path], tmp_path: Path
) -> None:
    """MiniLM with its weights in an external file, fixed to 1x128 through REST: the downloaded zip declares
    only static shapes and runs in onnxruntime with outputs of those shapes."""
    sid = upload(client, *external_model)
    r = client.post(
        f"/api/sessions/{sid}/edits", json={"edits": [{"op": "make_static", "dims": {"batch": 1, "sequence": 128}}]}
    )
    assert r.status_code == 200, r.text
    assert client.get(f"/api/sessions/{sid}/shapes").json()["all_static"]
    with zipfile.ZipFile(io.BytesIO(client.get(f"/api/sessions/{sid}/model").content)) as zf:
        zf.extractall(tmp_path)
    path = tmp_path / "minilm.edited.onnx"
    model = onnx.load(str(path), load_external_data=False)
    for vi in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        assert all(d.HasField("dim_value") for d in vi.type.tensor_type.shape.dim), vi.name
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.ones((1, 128), np.int64) for i in session.get_inputs()}
    assert session.run(None, feeds)[0].shape == (1, 128, 384)
