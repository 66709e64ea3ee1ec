"""GET /api/vocabulary: the constants and names the page reads from the server instead of holding copies.
Each is checked against what the server really does with it: the layout's boxes are sized with the box
metrics, every dtype makes a model input of that type, and the analysis knows every algorithm,
configuration and toolkit by the names given."""

from __future__ import annotations

import io
from pathlib import Path

import onnx
from fastapi.testclient import TestClient
from onnx import TensorProto

from tests.quant.models import conv_net

from .conftest import get_ok, upload
from .test_quant_api import start, wait

# the ONNX element type each offered dtype must give a new model input, in the order the dialog offers them
DTYPES = {
    "float32": "FLOAT",
    "float16": "FLOAT16",
    "bfloat16": "BFLOAT16",
    "float64": "DOUBLE",
    "int8": "INT8",
    "uint8": "UINT8",
    "int16": "INT16",
    "uint16": "UINT16",
    "int32": "INT32",
    "uint32": "UINT32",
    "int64": "INT64",
    "uint64": "UINT64",
    "bool": "BOOL",
    "string": "STRING",
}


def test_the_box_metrics_are_those_the_layout_sizes_boxes_with(client: TestClient, open_session) -> None:
    box = get_ok(client, "/api/vocabulary")["box"]
    drawing = get_ok(client, f"/api/sessions/{open_session('ppocrv4_det')}/layout")
    ops = [b for b in drawing["nodes"] if b["kind"] == "op"]
    assert any(b["rows"] for b in ops) and any(not b["rows"] for b in ops)
    for b in ops:  # a title bar, then one row per attribute or weight (and a 4 px margin under rows)
        assert b["h"] == box["title_h"] + box["row_h"] * len(b["rows"]) + (box["rows_pad"] if b["rows"] else 0), b
        assert 2 * box["pad_x"] < b["w"]


def test_every_dtype_makes_a_model_input_of_that_type(client: TestClient, open_session) -> None:
    vocabulary = get_ok(client, "/api/vocabulary")
    assert vocabulary["dtypes"] == list(DTYPES)  # float32 first: the dialog's default
    sid = open_session("ppocrv4_det")
    edits = [{"op": "add_input", "name": f"in_{d}", "dtype": d, "shape": [1, 2]} for d in vocabulary["dtypes"]]
    r = client.post(f"/api/sessions/{sid}/edits", json={"edits": edits})
    assert r.status_code == 200, r.text
    model = onnx.load(io.BytesIO(client.get(f"/api/sessions/{sid}/model").content))
    types = {i.name: TensorProto.DataType.Name(i.type.tensor_type.elem_type) for i in model.graph.input}
    assert {d: types[f"in_{d}"] for d in DTYPES} == DTYPES


def test_the_analysis_knows_every_quantization_name(client: TestClient, tmp_path: Path) -> None:
    quant = get_ok(client, "/api/vocabulary")["quant"]
    assert quant["default_toolkit"] in quant["toolkits"] and quant["hybrid"] not in quant["configurations"]
    onnx.save(conv_net(seed=1), tmp_path / "conv.onnx")
    sid = upload(client, tmp_path / "conv.onnx")
    for toolkit in quant["toolkits"]:
        job = start(client, sid, random=2, target=toolkit, algorithms=quant["algorithms"])
        assert wait(client, job["job_id"])["state"] == "succeeded"
        base = f"/api/sessions/{sid}/quant/{job['job_id']}"
        report = get_ok(client, f"{base}/report", histograms="false")
        assert report["toolkit"]["name"] == toolkit
        assert all(list(t["ranges"]) == quant["algorithms"] for t in report["tensors"].values())
        assert sorted(report["end_to_end"]) == sorted(quant["configurations"] + [quant["hybrid"]])
        for config in [*quant["configurations"], quant["hybrid"]]:
            assert client.get(f"{base}/table", params={"config": config}).status_code == 200, config
