"""The quantization analysis through the real HTTP API: upload, job, progress (JSON and server-sent
events), report, one tensor's histogram, QDQ download run in onnxruntime, re-measuring a chosen
precision, cancelling, and the refusals of bad input."""

from __future__ import annotations

import io
import json
import re
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import yaml
from fastapi.testclient import TestClient

from tests.memory import peak_rss_growth
from tests.quant.models import conv_net, integer_model
from tests.quant.test_real_models import _image_like

from .conftest import error_of, make_client, upload
from .server_process import ServerProcess


def start(
    client: TestClient, sid: str, files: list[tuple[str, tuple[str, bytes]]] | None = None, **settings: Any
) -> dict[str, Any]:
    r = client.post(
        f"/api/sessions/{sid}/quant", files=files or None, data={"settings": json.dumps(settings)} if settings else None
    )
    assert r.status_code == 202, r.text
    return r.json()


def wait(client: TestClient, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job_id}").json()
        if state["state"] in ("succeeded", "failed", "cancelled", "interrupted"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {state}")


def npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def sqnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    x, y = reference.astype(np.float64), candidate.astype(np.float64)
    return float(10 * np.log10(np.sum(x * x) / np.sum((x - y) ** 2)))


@pytest.fixture
def conv_session(client: TestClient, tmp_path: Path) -> tuple[str, np.ndarray]:
    """A session on the small CNN with a planted outlier channel, and 6 calibration samples for it."""
    onnx.save(conv_net(outlier=True, seed=1), tmp_path / "conv.onnx")
    x = np.random.default_rng(2).standard_normal((6, 3, 16, 16)).astype(np.float32)
    return upload(client, tmp_path / "conv.onnx"), x


def test_analysis_end_to_end(client: TestClient, conv_session: tuple[str, np.ndarray]) -> None:
    sid, x = conv_session
    job = start(client, sid, [("data", ("calib.npz", npz(x=x)))], per_channel=True)
    assert job["version"] == 0 and job["session"] == sid and job["links"]["job"] == f"/api/jobs/{job['job_id']}"
    with client.stream("GET", f"/api/jobs/{job['job_id']}", headers={"Accept": "text/event-stream"}) as stream:
        events = [json.loads(line[len("data: ") :]) for line in stream.iter_lines() if line.startswith("data: ")]
    final = events[-1]
    assert final["state"] == "succeeded", final
    assert final["kind"] == "quant" and final["progress"] == 1.0
    assert final["result"]["version"] == 0 and final["result"]["samples"] == 6
    assert final["detail"]["phase"] == "done"
    fractions = [e["progress"] for e in events]
    assert fractions == sorted(fractions)

    base = f"/api/sessions/{sid}/quant/{job['job_id']}"
    r = client.get(f"{base}/report")
    assert r.status_code == 200 and r.headers["x-model-version"] == "0"
    report = r.json()
    assert report["format"] == "onnx-workbench/quant-report" and report["model"] == {"session": sid, "version": 0}
    assert report["samples"] == 6 and report["synthetic"] is False
    assert report["recommendation"]["meets_target"] and "r1" in report["recommendation"]["int16"]
    light = client.get(f"{base}/report?histograms=false").json()
    assert (
        "histogram" not in light["tensors"]["r1"]
        and light["tensors"]["r1"]["ranges"] == report["tensors"]["r1"]["ranges"]
    )

    # one tensor's histogram: the report's numbers, at full resolution (the report's is thinned) or resampled
    one = client.get(f"{base}/histogram/r1").json()
    assert one["tensor"] == "r1" and one["version"] == 0 and one["int16_in_hybrid"] is True
    assert len(one["histogram"]["counts"]) == report["tensors"]["r1"]["histogram"]["thinned_from"]
    assert one["ranges"] == report["tensors"]["r1"]["ranges"]
    assert sum(one["histogram"]["counts"]) == one["count"] == 6 * 8 * 16 * 16
    coarse = client.get(f"{base}/histogram/r1?bins=40").json()["histogram"]
    assert len(coarse["counts"]) == 40 and len(coarse["edges"]) == 41
    assert abs(sum(coarse["counts"]) - one["count"]) < 1e-6 * one["count"]
    assert coarse["edges"][0] == one["min"] and coarse["edges"][-1] == one["max"]
    error_of(client.get(f"{base}/histogram/w1"), 404, "unknown_tensor")

    # QDQ downloads run in onnxruntime with default options and measure what the report says
    reference = ort.InferenceSession(
        conv_net(outlier=True, seed=1).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    expected = np.concatenate([reference.run(None, {"x": x[i : i + 1]})[0] for i in range(6)])
    for config in ("uint8/minmax", "int16/minmax", "hybrid"):
        r = client.get(f"{base}/qdq", params={"config": config})
        assert r.status_code == 200 and r.headers["x-model-version"] == "0"
        sess = ort.InferenceSession(r.content, providers=["CPUExecutionProvider"])
        got = np.concatenate([sess.run(None, {"x": x[i : i + 1]})[0] for i in range(6)])
        assert abs(sqnr_db(expected, got) - report["end_to_end"][config]["y"]["sqnr_db"]) < 0.01, config
    table = client.get(f"{base}/table", params={"config": "uint8/kl"}).json()
    assert table["format"] == "onnx-workbench/quant-table" and table["configuration"] == "uint8/kl"
    assert table["model"]["version"] == 0 and table["tensors"]["r1"]["algorithm"] == "kl"
    custom = client.get(f"{base}/table", params={"config": "hybrid", "int16": json.dumps(["t3"])}).json()
    assert custom["tensors"]["t3"]["dtype"] == "int16" and custom["tensors"]["r1"]["dtype"] == "uint8"
    error_of(client.get(f"{base}/qdq", params={"config": "int4"}), 422, "bad_config")
    error_of(client.get(f"{base}/qdq", params={"int16": json.dumps(["nope"])}), 422, "bad_precision")
    all_int16 = {"config": "int16/minmax", "int16": json.dumps(["t3"])}  # an int16 list over int16: nothing to do
    error_of(client.get(f"{base}/table", params=all_int16), 422, "bad_precision")

    # re-measuring the recommended int16 list reproduces the report's hybrid measurement (to float rounding: the
    # analysis takes the float outputs from its statistics pass, a basic-optimised run, and adds the curve's
    # samples and the others in two parts; a measurement runs the fully optimised float model)
    r = client.post(f"{base}/measure", json={"int16": report["recommendation"]["int16"]})
    assert r.status_code == 202, r.text
    measured = wait(client, r.json()["job_id"])
    assert measured["state"] == "succeeded", measured
    remeasured, hybrid = measured["result"]["end_to_end"]["custom"], report["end_to_end"]["hybrid"]
    assert remeasured.keys() == hybrid.keys()
    for name, error in hybrid.items():
        assert remeasured[name] == pytest.approx(error, rel=1e-6)
    assert measured["result"]["version"] == 0 and measured["kind"] == "quant-measure"
    r = client.post(f"{base}/measure", json={"int16": [], "overrides": {"r1": "uint8/percentile"}})
    worse = wait(client, r.json()["job_id"])["result"]["end_to_end"]["custom"]["y"]["sqnr_db"]
    assert worse < report["end_to_end"]["hybrid"]["y"]["sqnr_db"]
    error_of(client.post(f"{base}/measure", json={"int16": ["r1"], "overrides": {"c2": "int4"}}), 422, "bad_precision")

    # a later edit does not touch the results, which still name the version they were computed on
    r = client.post(
        f"/api/sessions/{sid}/edits", json={"edits": [{"op": "rename_node", "node": "conv2", "to": "stem"}]}
    )
    assert r.status_code == 200 and r.json()["version"] == 1
    listing = client.get(f"/api/sessions/{sid}/quant").json()
    assert listing["version"] == 1
    assert [(a["job_id"], a["version"], a["current"], a["state"]) for a in listing["analyses"]] == [
        (job["job_id"], 0, False, "succeeded")
    ]
    assert client.get(f"{base}/report").json()["tensors"]["c2"]["node"] == "conv2"
    qdq = onnx.load_from_string(client.get(f"{base}/qdq").content)
    assert "conv2" in {n.name for n in qdq.graph.node}

    # the results go with the session
    assert client.delete(f"/api/sessions/{sid}").status_code == 204
    error_of(client.get(f"{base}/report"), 404)


def test_images_with_preprocessing_fields_and_random_data(client: TestClient, tmp_path: Path) -> None:
    """Individual form fields, a zip of PNG images resized to the input, and synthetic data."""
    from PIL import Image

    onnx.save(conv_net(input_dims=[1, 3, "h", "w"]), tmp_path / "dyn.onnx")
    sid = upload(client, tmp_path / "dyn.onnx")
    rng = np.random.default_rng(0)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for k in range(3):
            png = io.BytesIO()
            Image.fromarray(_image_like(rng, 64)).save(png, format="PNG")
            z.writestr(f"imgs/{k}.png", png.getvalue())
    r = client.post(
        f"/api/sessions/{sid}/quant",
        files=[("data", ("images.zip", archive.getvalue()))],
        data={
            "size": "24x20",
            "mean": "123.675,116.28,103.53",
            "std": "58.395,57.12,57.375",
            "channel_order": "bgr",
            "end_to_end": "false",
        },
    )
    assert r.status_code == 202, r.text
    state = wait(client, r.json()["job_id"])
    assert state["state"] == "succeeded", state
    report = client.get(f"/api/sessions/{sid}/quant/{state['id']}/report?histograms=false").json()
    assert report["samples"] == 3 and report["data"] == "3 images" and report["end_to_end"] == {}
    assert report["tensors"]["x"]["count"] == 3 * 3 * 24 * 20
    assert report["tensors"]["x"]["min"] < -1.5 and report["tensors"]["x"]["max"] < 3  # normalised pixels
    error_of(client.get(f"/api/sessions/{sid}/quant/{state['id']}/qdq"), 409, "no_hybrid")

    # random data needs static dims: given here as shapes
    r = client.post(
        f"/api/sessions/{sid}/quant", data={"random": "2", "shapes": '{"x": [1, 3, 8, 8]}', "end_to_end": "false"}
    )
    assert r.status_code == 202, r.text
    state = wait(client, r.json()["job_id"])
    report = client.get(f"/api/sessions/{sid}/quant/{state['id']}/report?histograms=false").json()
    assert report["synthetic"] is True and report["tensors"]["x"]["count"] == 2 * 3 * 8 * 8


def test_bad_input_is_refused_with_the_analysis_message(
    client: TestClient, tmp_path: Path, conv_session: tuple[str, np.ndarray]
) -> None:
    sid, x = conv_session
    cases = [
        ({"x_wrong": x}, "missing \\['x'\\]"),
        ({"x": x[:, :, :8, :8]}, "does not fit input x"),
        ({"x": x.astype(np.int64)}, "dtype int64 but input x"),
    ]
    for arrays, pattern in cases:
        err = error_of(
            client.post(f"/api/sessions/{sid}/quant", files=[("data", ("d.npz", npz(**arrays)))]),
            422,
            "bad_quant_input",
        )
        assert re.search(pattern, err["message"]), err
    err = error_of(client.post(f"/api/sessions/{sid}/quant", data={"settings": "{not json"}), 422, "bad_settings")
    err = error_of(
        client.post(f"/api/sessions/{sid}/quant", data={"percentile": "20", "random": "1"}), 422, "bad_settings"
    )
    assert "percentile" in err["message"]
    error_of(client.post(f"/api/sessions/{sid}/quant", data={"seed": "1"}), 422, "missing_data")
    error_of(
        client.post(f"/api/sessions/{sid}/quant", files=[("data", ("d.npz", npz(x=x)))], data={"random": "2"}),
        422,
        "bad_settings",
    )

    onnx.save(conv_net(input_dims=["batch", 3, "height", "width"]), tmp_path / "dynamic.onnx")
    dynamic = upload(client, tmp_path / "dynamic.onnx")
    err = error_of(client.post(f"/api/sessions/{dynamic}/quant", data={"random": "2"}), 422, "bad_quant_input")
    assert "dynamic dimensions" in err["message"] and "'batch'" in err["message"]

    onnx.save(integer_model(), tmp_path / "ints.onnx")
    ints = upload(client, tmp_path / "ints.onnx")
    err = error_of(client.post(f"/api/sessions/{ints}/quant", data={"random": "1"}), 422, "bad_quant_input")
    assert "no float32 activation tensors" in err["message"]

    missing = "A" * 32
    error_of(client.post(f"/api/sessions/{missing}/quant", data={"random": "1"}), 404, "unknown_session")
    error_of(client.get(f"/api/sessions/{missing}/quant"), 404, "unknown_session")
    error_of(client.get(f"/api/sessions/{sid}/quant/{'B' * 32}/report"), 404, "unknown_analysis")
    assert client.get(f"/api/sessions/{sid}/quant").json()["analyses"] == []  # refusals leave nothing behind
    assert not [p for p in (client.app.state.store.sessions / sid / "quant").iterdir() if p.name != "jobs"]


def test_a_file_named_npy_that_is_not_an_npy_array_is_refused(
    client: TestClient, conv_session: tuple[str, np.ndarray]
) -> None:
    """Empty, an .npz, a cut .npz, text, an array of Python objects: 422 naming the file, never a 500."""
    sid, x = conv_session
    whole = npz(x=x)
    objects = io.BytesIO()
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for body in (b"", whole, whole[:100], b"not an array", objects.getvalue()):
        err = error_of(
            client.post(f"/api/sessions/{sid}/quant", files=[("data", ("d.npy", body))]), 422, "bad_quant_input"
        )
        assert "d.npy is not a valid .npy array" in err["message"], err
    assert client.get(f"/api/sessions/{sid}/quant").json()["analyses"] == []


def test_cancel_stops_the_analysis(client: TestClient, conv_session: tuple[str, np.ndarray]) -> None:
    sid, _ = conv_session
    before = {t for t in threading.enumerate() if t.name.startswith("quant-")}
    job = start(client, sid, random=400, end_to_end=False)
    deadline = time.monotonic() + 60
    while True:
        state = client.get(f"/api/jobs/{job['job_id']}").json()
        if (state.get("detail") or {}).get("done", 0) >= 20:
            break
        assert state["state"] in ("queued", "running") and time.monotonic() < deadline, state
        time.sleep(0.02)
    assert state["detail"]["phase"] == "statistics" and state["detail"]["unit"] == "samples"
    assert state["detail"]["total"] == 400 and 0 < state["detail"]["percent"] < 100
    r = client.delete(f"/api/jobs/{job['job_id']}")
    assert r.status_code == 200 and r.json()["cancel_requested"] is True
    final = wait(client, job["job_id"])
    assert final["state"] == "cancelled" and final["detail"]["done"] < 400
    assert not {t for t in threading.enumerate() if t.name.startswith("quant-") and t.is_alive()} - before
    error_of(client.get(f"/api/sessions/{sid}/quant/{job['job_id']}/report"), 409, "analysis_not_ready")


@pytest.mark.slow
def test_ppocrv4_det_fixed_by_edits_with_images(client: TestClient, open_session, tmp_path: Path) -> None:
    """The real detector: dims fixed through the edits API, three image-like samples, hybrid QDQ export."""
    sid = open_session("ppocrv4_det")
    edits = [{"op": "fix_dim", "dim": f"p2o.DynamicDimension.{k}", "value": v} for k, v in enumerate([1, 640, 640])]
    r = client.post(f"/api/sessions/{sid}/edits", json={"edits": edits})
    assert r.status_code == 200, r.text
    version = r.json()["version"]
    rng = np.random.default_rng(0)
    mean, std = np.array([123.675, 116.28, 103.53]), np.array([58.395, 57.12, 57.375])
    x = np.stack([((_image_like(rng, 640) - mean) / std).transpose(2, 0, 1) for _ in range(3)]).astype(np.float32)
    job = start(client, sid, [("data", ("calib.npz", npz(x=x)))], per_channel=True)
    state = wait(client, job["job_id"], timeout=300)
    assert state["state"] == "succeeded", state
    assert job["version"] == state["result"]["version"] == version == 3 and state["result"]["tensors"] > 100
    base = f"/api/sessions/{sid}/quant/{job['job_id']}"
    report = client.get(f"{base}/report?histograms=false").json()
    (output,) = report["end_to_end"]["int16/minmax"]
    assert (
        report["end_to_end"]["int16/minmax"][output]["sqnr_db"]
        > report["end_to_end"]["uint8/minmax"][output]["sqnr_db"]
    )
    qdq = client.get(f"{base}/qdq", params={"config": "hybrid"}).content
    sess = ort.InferenceSession(qdq, providers=["CPUExecutionProvider"])  # default optimizations
    (y,) = sess.run(None, {"x": x[:1]})
    assert y.shape == (1, 1, 640, 640) and np.isfinite(y).all()


def test_external_data_model_gives_a_zipped_qdq(client: TestClient, tmp_path: Path) -> None:
    """A session whose weights are external: the job reads them in place and the QDQ download is a zip
    of the model and its data file, which runs in onnxruntime once unpacked."""
    onnx.save(
        conv_net(seed=5), tmp_path / "conv.onnx", save_as_external_data=True, location="conv.bin", size_threshold=0
    )
    sid = upload(client, tmp_path / "conv.onnx", tmp_path / "conv.bin")
    x = np.random.default_rng(6).standard_normal((3, 3, 16, 16)).astype(np.float32)
    # onnxruntime keeps the float biases, so they stay external (acuity's QDQ model has rounded copies)
    job = start(client, sid, [("data", ("calib.npz", npz(x=x)))], target="onnxruntime")
    assert wait(client, job["job_id"])["state"] == "succeeded"
    r = client.get(f"/api/sessions/{sid}/quant/{job['job_id']}/qdq", params={"config": "uint8/kl"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert 'filename="model.uint8-kl.qdq.zip"' in r.headers["content-disposition"]
    out = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(r.content)).extractall(out)
    assert sorted(p.name for p in out.iterdir()) == ["model.uint8-kl.qdq.onnx", "model.uint8-kl.qdq.onnx.data"]
    sess = ort.InferenceSession(str(out / "model.uint8-kl.qdq.onnx"), providers=["CPUExecutionProvider"])
    reference = ort.InferenceSession(conv_net(seed=5).SerializeToString(), providers=["CPUExecutionProvider"])
    assert sqnr_db(reference.run(None, {"x": x[:1]})[0], sess.run(None, {"x": x[:1]})[0]) > 20
    jobs_folder = next(Path(client.app.state.settings.data_dir).rglob(job["job_id"])).parent.parent
    assert not list(jobs_folder.rglob("export-*")), "the export's staging folder is left behind"


def test_int16_weights_setting_reaches_the_analysis(client: TestClient, conv_session: tuple[str, np.ndarray]) -> None:
    sid, x = conv_session
    job = start(
        client, sid, [("data", ("calib.npz", npz(x=x)))], target="onnxruntime", int16_weights=True, target_sqnr_db=30.0
    )
    assert wait(client, job["job_id"])["state"] == "succeeded"
    base = f"/api/sessions/{sid}/quant/{job['job_id']}"
    report = client.get(f"{base}/report?histograms=false").json()
    assert report["settings"]["int16"] == "activations and the weights of their layers (W16A16)"
    table = client.get(f"{base}/table", params={"config": "int16/minmax"}).json()["tensors"]
    assert {table[w]["dtype"] for w in ("w1", "w2", "w3", "w4", "w5")} == {"int16"}
    error_of(
        client.post(
            f"/api/sessions/{sid}/quant", data={"settings": json.dumps({"int16_weights": "maybe"}), "random": "2"}
        ),
        422,
        "bad_settings",
    )


def test_quant_data_over_the_run_element_limit_is_refused_before_the_job(
    client: TestClient, data_dir: Path, tmp_path: Path
) -> None:
    """Random data of absurd shapes, images resized to an absurd size and arrays whose batches are too
    big answer 413 at request time, like /run; a batch at the limit is accepted."""
    onnx.save(conv_net(input_dims=[1, 3, "h", "w"]), tmp_path / "dyn.onnx")
    sid = upload(client, tmp_path / "dyn.onnx")
    for fields in (
        {"random": "1", "shapes": '{"x": [1, 3, 17000, 17000]}'},
        {"random": "1", "size": "17000x17000"},
        {"random": "1", "shapes": '{"x": [1, 3, 4294967296, 4294967296]}'},
    ):
        err = error_of(client.post(f"/api/sessions/{sid}/quant", data=fields), 413, "too_large")
        assert "elements; the limit is 268,435,456" in err["message"] and err["details"]["input"] == "x"
    assert not [p for p in (client.app.state.store.sessions / sid / "quant").iterdir() if p.name != "jobs"]

    with make_client(data_dir, max_run_elements=3 * 8 * 8) as small:
        sid = upload(small, tmp_path / "dyn.onnx")
        start(small, sid, random=1, shapes={"x": [1, 3, 8, 8]}, end_to_end=False)
        error_of(
            small.post(f"/api/sessions/{sid}/quant", data={"random": "1", "shapes": '{"x": [1, 3, 8, 9]}'}),
            413,
            "too_large",
        )
        x = np.zeros((2, 3, 8, 9), np.float32)
        error_of(small.post(f"/api/sessions/{sid}/quant", files=[("data", ("d.npz", npz(x=x)))]), 413, "too_large")


def test_absurd_random_quant_shapes_leave_a_real_server_s_memory_alone(tmp_path: Path) -> None:
    """1x1x17000x17000 random data once took a server from 0.9 to 4.2 GB; now it is refused first."""
    onnx.save(conv_net(input_dims=[1, 3, "h", "w"]), tmp_path / "dyn.onnx")
    folder = tmp_path / "data"
    folder.mkdir()
    with ServerProcess(folder) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        model = (tmp_path / "dyn.onnx").read_bytes()
        sid = http.post("/api/sessions", files={"file": ("dyn.onnx", model)}).json()["id"]
        with peak_rss_growth(server.proc.pid) as growth:
            for shape in ([1, 3, 17000, 17000], [1, 3, 1 << 20, 1 << 20], [1, 3, 40000, 40000]):
                r = http.post(
                    f"/api/sessions/{sid}/quant", data={"random": "10000", "shapes": json.dumps({"x": shape})}
                )
                if r.status_code == 202:  # the job would allocate: give it the time to show
                    time.sleep(5)
                assert r.status_code == 413, r.text
        assert growth[0] < 300 << 20, f"server memory grew by {growth[0] >> 20} MB"


def test_target_toolkit_setting_table_and_file(client: TestClient, conv_session: tuple[str, np.ndarray]) -> None:
    """target=rknn: the report and table speak RKNN's terms, the plan comes as its .quantization.cfg, and a
    measured int16 list names the tensors in its 16-bit precision (w16a16i)."""
    sid, x = conv_session
    job = start(client, sid, [("data", ("calib.npz", npz(x=x)))], target="rknn", end_to_end=False)
    assert wait(client, job["job_id"])["state"] == "succeeded"
    base = f"/api/sessions/{sid}/quant/{job['job_id']}"
    report = client.get(f"{base}/report?histograms=false").json()
    assert report["toolkit"]["name"] == "rknn" and report["toolkit"]["precisions"]["int16"]["name"] == "w16a16i"
    assert report["tensors"]["r1"]["layer"] == ["conv1", "relu1"]
    table = client.get(f"{base}/table", params={"config": "uint8/minmax", "int16": json.dumps(["t3"])}).json()
    assert table["toolkit"] == "rknn" and table["tensors"]["t3"]["precision"] == "w16a16i"
    assert table["tensors"]["r1"]["precision"] == "w8a8" and table["tensors"]["w1"]["axis"] == 0
    r = client.get(f"{base}/toolkit-file", params={"config": "uint8/minmax", "int16": json.dumps(["t3"])})
    assert r.status_code == 200 and "model.quantization.cfg" in r.headers["content-disposition"]
    cfg = yaml.safe_load(r.text)
    assert cfg["custom_quantize_layers"] == {"t3": "int16"} and set(report["tensors"]) <= set(
        cfg["quantize_parameters"]
    )
    error_of(client.get(f"{base}/toolkit-file", params={"config": "int4"}), 422, "bad_config")
    r = client.post(f"{base}/measure", json={"int16": ["t3"]})
    assert wait(client, r.json()["job_id"])["result"]["int16"] == ["t3"]
    onnxruntime = start(client, sid, [("data", ("calib.npz", npz(x=x)))], target="onnxruntime", end_to_end=False)
    assert wait(client, onnxruntime["job_id"])["state"] == "succeeded"
    error_of(
        client.get(
            f"/api/sessions/{sid}/quant/{onnxruntime['job_id']}/toolkit-file", params={"config": "uint8/minmax"}
        ),
        409,
        "no_toolkit_file",
    )
    error_of(
        client.post(f"/api/sessions/{sid}/quant", data={"settings": json.dumps({"target": "tensorrt"}), "random": "2"}),
        422,
        "bad_settings",
    )


def test_verdict_thresholds_setting(client: TestClient, conv_session: tuple[str, np.ndarray]) -> None:
    """The verdict grades every measured configuration against the thresholds given, and says which."""
    sid, x = conv_session
    job = start(client, sid, [("data", ("calib.npz", npz(x=x)))], good_sqnr_db=1000.0, marginal_cosine=0.5)
    assert wait(client, job["job_id"])["state"] == "succeeded"
    report = client.get(f"/api/sessions/{sid}/quant/{job['job_id']}/report?histograms=false").json()
    assert set(report["verdict"]) == set(report["end_to_end"]) == {"uint8/minmax", "uint8/kl", "int16/minmax", "hybrid"}
    for judged in report["verdict"].values():
        assert judged["thresholds"] == {"good_cosine": 0.99, "good_sqnr_db": 1000.0, "marginal_cosine": 0.5}
        assert judged["grade"] in ("marginal", "poor")  # no SQNR reaches 1000 dB
    r = client.post(
        f"/api/sessions/{sid}/quant",
        files=[("data", ("calib.npz", npz(x=x)))],
        data={"settings": json.dumps({"good_cosine": 0.9, "marginal_cosine": 0.95})},
    )
    assert "marginal cosine <= good cosine" in error_of(r, 422, "bad_settings")["message"]


def test_curve_points_export_and_bad_curve_requests_leave_the_session_alone(
    client: TestClient, conv_session: tuple[str, np.ndarray]
) -> None:
    """?k= exports a measured point of the precision curve; an unmeasured k, k with an int16 list and a
    sensitivity_samples of 0 are refused with a 4xx that says why, and the session stays as it was."""
    sid, x = conv_session
    job = start(client, sid, [("data", ("calib.npz", npz(x=x)))], target="onnxruntime")
    assert wait(client, job["job_id"])["state"] == "succeeded"
    base = f"/api/sessions/{sid}/quant/{job['job_id']}"
    report = client.get(f"{base}/report?histograms=false").json()
    before = client.get(f"/api/sessions/{sid}").json()
    curve = report["recommendation"]["curve"]
    point = curve[1]
    table = client.get(f"{base}/table", params={"k": point["k"]}).json()
    assert {t for t, e in table["tensors"].items() if e["dtype"] == "int16" and t in report["tensors"]} == set(
        point["int16"]
    )
    assert client.get(f"{base}/qdq", params={"k": point["k"]}).status_code == 200
    unmeasured = max(p["k"] for p in curve) + 1
    assert (
        "not a measured point"
        in error_of(client.get(f"{base}/qdq", params={"k": unmeasured}), 404, "no_curve_point")["message"]
    )
    error_of(client.get(f"{base}/table", params={"k": 0, "int16": "[]"}), 422, "bad_precision")
    assert client.get(f"{base}/qdq", params={"k": -1}).status_code == 422
    r = client.post(
        f"/api/sessions/{sid}/quant",
        files=[("data", ("calib.npz", npz(x=x)))],
        data={"settings": json.dumps({"sensitivity_samples": 0})},
    )
    assert "sensitivity_samples" in error_of(r, 422, "bad_settings")["message"]
    assert client.get(f"/api/sessions/{sid}").json() == before
