"""The quantization UI in a real browser on PP-OCRv4 det: fix the dims, upload a calibration .npz,
follow the job, check the histogram's clip lines against the report, sort the per-layer table and
click the worst row, switch on the heat-map, export the hybrid QDQ model and run it."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from app.quant.report import REPORT_HISTOGRAM_BINS
from tests.quant.test_real_models import _image_like

from .conftest import ARTIFACTS, ROOT, shot
from .test_editor import click_node, open_model, version, wait_after

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SAMPLES = 3
MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])


def calibration_npz(path: Path) -> Path:
    """A few image-like samples at 640x640, preprocessed as PP-OCR does, keyed by the input name."""
    rng = np.random.default_rng(0)
    images = [_image_like(rng, 640) for _ in range(SAMPLES)]
    x = np.stack([((im - MEAN) / STD).transpose(2, 0, 1) for im in images]).astype(np.float32)
    np.savez(path, x=x)
    return path


def zero_point_type(model: onnx.ModelProto, tensor: str) -> int:
    """The element type of the zero point of the DequantizeLinear that gives back `tensor`."""
    dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output[0] == tensor)
    init = next((t for t in model.graph.initializer if t.name == dq.input[2]), None)
    if init is None:
        const = next(n for n in model.graph.node if n.op_type == "Constant" and n.output[0] == dq.input[2])
        init = const.attribute[0].t
    return init.data_type


def readiness_text(page: Any) -> str:
    """The NPU-readiness summary of the model panel (it waits for the static-shape report)."""
    try:
        page.wait_for_selector("#readiness .ready-list", timeout=90_000)
    except Exception:
        raise AssertionError("no readiness summary; the sidebar shows: " + page.inner_text("#sidebar")[:800]) from None
    return page.inner_text("#readiness")


def fix_dims_by_api(server: str, sid: str) -> int:
    """PP-OCRv4 det's dynamic dims fixed to 1x3x640x640 through the REST API; the new version."""
    edits = [{"op": "fix_dim", "dim": f"p2o.DynamicDimension.{k}", "value": v} for k, v in enumerate((1, 640, 640))]
    request = urllib.request.Request(
        f"{server}/api/sessions/{sid}/edits",
        data=json.dumps({"edits": edits}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    return json.loads(urllib.request.urlopen(request, timeout=60).read())["version"]


def test_quantization_in_the_editor(page: Any, server: str, fixture_model: Any, tmp_path: Path) -> None:
    started = time.monotonic()
    open_model(page, server, fixture_model("ppocrv4_det"))

    # the readiness summary of the freshly opened model: dynamic dims, quantization not yet run
    text = readiness_text(page)
    assert "3 dynamic dim(s)" in text and "Quantization not yet analysed" in text
    shot(page, "q00-readiness")

    # fix the dims from the summary's own button
    v = version(page)
    page.click("#ready-fix-dims")
    page.fill("[data-dim='p2o.DynamicDimension.0']", "1")
    page.fill("[data-dim='p2o.DynamicDimension.1']", "640")
    page.fill("[data-dim='p2o.DynamicDimension.2']", "640")
    page.click("#dialog-submit")
    wait_after(page, v)
    page.keyboard.press("Escape")
    page.wait_for_function(
        "document.querySelector('#readiness .ready-list') && "
        "document.querySelector('#readiness').innerText.includes('No dynamic input dims')"
    )

    # the analyse dialog: upload the .npz, watch the job's progress
    page.click("#btn-quant")
    page.click("#q-analyse")
    page.set_input_files("#quant-files", str(calibration_npz(tmp_path / "calib.npz")))
    shot(page, "q01-analyse-dialog")
    page.click("#dialog-submit")
    page.wait_for_selector(".quant-progress:not([hidden])")
    seen = set()
    deadline = time.monotonic() + 150
    while page.locator("#q-table").count() == 0:
        assert time.monotonic() < deadline, "the analysis did not finish in time"
        if page.locator("#quant-progress").count():
            seen.add(float(page.get_attribute("#quant-progress", "value") or 0))
        page.wait_for_timeout(150)
    assert any(0 < p < 1 for p in seen) or len(seen) > 1, f"no progress was shown: {seen}"
    report = page.evaluate("window.__editor.quant.result.report")
    assert report["format"] == "onnx-workbench/quant-report" and report["samples"] == SAMPLES

    # a tensor's histogram: the Min-Max and KL clip lines sit at the report's values on the chart's scale
    node = "p2o.Conv.2"
    tensor = next(t for t, e in report["tensors"].items() if node in e["layer"])  # the Conv's fused layer
    click_node(page, node)
    page.wait_for_selector("#q-histogram svg line.clip-kl", state="attached")
    chart = page.locator("#q-histogram svg")
    x0, x1 = float(chart.get_attribute("data-x0")), float(chart.get_attribute("data-x1"))
    left, width = float(chart.get_attribute("data-left")), float(chart.get_attribute("data-plot-width"))
    for algorithm in ("minmax", "kl"):
        lines = page.locator(f"#q-histogram line.clip-{algorithm}")
        assert lines.count() == 2
        for k in range(2):
            line = lines.nth(k)
            bound = 0 if line.get_attribute("data-bound") == "lo" else 1
            value = report["tensors"][tensor]["ranges"][algorithm][bound]
            assert float(line.get_attribute("data-value")) == value
            expected = left + (value - x0) / (x1 - x0) * width
            assert abs(float(line.get_attribute("x1")) - expected) < 0.01
            assert line.get_attribute("x1") == line.get_attribute("x2")
    # the bars come from the histogram route at full resolution, not from the report's thinned histogram
    full = page.evaluate(f"window.__editor.quant.histograms.get({json.dumps(tensor)})")
    assert "thinned_from" not in full and len(full["counts"]) > REPORT_HISTOGRAM_BINS
    assert page.get_attribute("#q-histogram line.clip-minmax", "stroke") == "#d92d20"
    assert page.get_attribute("#q-histogram line.clip-minmax", "stroke-dasharray")
    assert page.get_attribute("#q-histogram line.clip-kl", "stroke") == "#16a34a"
    assert page.locator("#q-sqnr rect.bar").count() >= 4  # uint8 and int16 per algorithm
    page.uncheck("#q-log")
    page.wait_for_selector("#q-histogram svg[data-log='0']")
    page.check("#q-log")
    page.wait_for_selector("#q-histogram svg[data-log='1']")
    page.locator("#q-section").scroll_into_view_if_needed()
    shot(page, "q02-histogram")

    # the weight view of the same node: per-channel ranges, one bar per output channel
    page.wait_for_selector(".weight-view svg.channel-ranges")
    weight = page.get_attribute(".weight-view", "data-weight")
    assert (
        int(page.get_attribute(".weight-view svg.channel-ranges", "data-channels"))
        == report["weights"][weight]["shape"][0]
    )

    # the per-layer table sorted by uint8 Min-Max SQNR: the first row is the worst; a click selects its node
    page.click("th[data-key='uint8/minmax']")
    worst = min(
        (e["sqnr_db"]["uint8/minmax"], t)
        for t, e in report["tensors"].items()
        if e["sqnr_db"].get("uint8/minmax") is not None
    )[1]
    first = page.locator("#q-table tbody tr").first
    assert first.get_attribute("data-tensor") == worst
    first.click()
    producer = page.evaluate("(t) => window.__editor.model.tensor(t).producer", worst)
    assert page.evaluate("window.__editor.selection.nodes") == [producer]
    centred = page.evaluate(
        """(id) => { const gv = window.__editor.graphView;
        const b = gv.drawing.nodes[gv.byId.get(id)];
        const cx = gv.cam.x + gv.freeWidth() / gv.cam.k / 2; return Math.abs(cx - b.x) < 2; }""",
        producer,
    )
    assert centred
    page.wait_for_selector("#q-histogram svg line.clip-minmax", state="attached")
    shot(page, "q03-table-worst-row")

    # the filter keeps the rows whose tensor, node or op matches
    total = page.locator("#q-table tbody tr").count()
    page.fill("#q-filter", "Conv")
    page.wait_for_function(f"document.querySelectorAll('#q-table tbody tr').length < {total}")
    ops = page.eval_on_selector_all("#q-table tbody tr td:nth-child(2)", "tds => tds.map(td => td.textContent)")
    assert ops and all("Conv" in op for op in ops)
    page.fill("#q-filter", "")
    page.wait_for_function(f"document.querySelectorAll('#q-table tbody tr').length === {total}")

    # the heat-map: every quantized node coloured by its uint8 SQNR, with a legend
    page.check("#q-heatmap")
    page.wait_for_selector("#heat-legend:not([hidden]) svg.heat-legend")
    colours = page.evaluate(
        """(id) => { const gv = window.__editor.graphView;
        const ops = gv.drawing.nodes.map((b, i) => [b, i]).filter(([b]) => b.kind === 'op');
        const distinct = new Set(ops.map(([, i]) => gv.colorOverride(i))).size;
        return { worst: gv.colorOverride(gv.byId.get(id)), distinct }; }""",
        producer,
    )
    assert colours["distinct"] > 5
    r, g, _ = (int(colours["worst"][k : k + 2], 16) for k in (1, 3, 5))
    assert r > g  # the worst node is on the red side of the scale
    page.evaluate("window.__editor.graphView.zoomAt(0.7); document.getElementById('sidebar').scrollTop = 0")
    page.wait_for_timeout(300)
    path = shot(page, "q04-heatmap")
    shutil.copy(path, ROOT / "docs" / "screenshot-quant.png")

    # the hybrid panel: end-to-end charts, switch a tensor to int16, re-measure, export the hybrid QDQ model
    page.click("#q-tab-hybrid")
    outputs = list(report["end_to_end"]["int16/minmax"])
    assert page.locator(".e2e-sqnr rect.bar").count() == 4 * len(outputs)
    assert page.locator(".e2e-cosine rect.bar").count() == 4 * len(outputs)
    for config in ("uint8/minmax", "uint8/kl", "int16/minmax", "hybrid"):
        bar = page.locator(f".e2e-sqnr rect.bar[data-key='{config}']").first
        value = report["end_to_end"][config][outputs[0]]["sqnr_db"]
        assert value is None or abs(float(bar.get_attribute("data-value")) - value) < 1e-9
    # the verdict of every configuration, against absolute thresholds, as the report grades it
    grades = page.eval_on_selector_all("#q-verdict .pill", "ps => ps.map(p => p.dataset.grade)")
    assert grades == [report["verdict"][c]["grade"] for c in ("uint8/minmax", "uint8/kl", "int16/minmax", "hybrid")]
    assert page.get_attribute("#q-hybrid-verdict .pill", "data-grade") == report["verdict"]["hybrid"]["grade"]
    # switch the worst tensor the recommendation keeps in 8 bits to int16
    recommended = set(report["recommendation"]["int16"])
    page.click("#q-tab-layers")
    switch = next(
        t
        for t in page.eval_on_selector_all("#q-table tbody tr", "trs => trs.map(tr => tr.dataset.tensor)")
        if t not in recommended
    )
    page.locator(f"#q-table tr[data-tensor='{switch}'] button[data-precision='16']").click()
    page.click("#q-tab-hybrid")
    assert switch in page.inner_text("#q-int16-list")
    page.click("#q-remeasure")
    page.wait_for_selector("#q-measured", timeout=120_000)
    assert page.locator(".e2e-sqnr rect.bar[data-key='custom']").count() == len(outputs)
    shot(page, "q05-hybrid")
    page.select_option("#q-export-config", "hybrid")
    with page.expect_download() as info:
        page.click("#q-download-qdq")
    qdq = tmp_path / "model.qdq.onnx"
    info.value.save_as(str(qdq))
    model = onnx.load(str(qdq))
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    session = ort.InferenceSession(str(qdq), providers=["CPUExecutionProvider"])  # as a user would, optimized
    x = np.load(tmp_path / "calib.npz")["x"][:1]
    (out,) = session.run(None, {"x": x})
    assert out.shape == (1, 1, 640, 640) and np.isfinite(out).all()
    assert zero_point_type(model, switch) == onnx.TensorProto.UINT8  # the recommended hybrid keeps it 8-bit

    # "your choice" (one more tensor in int16): its QDQ model and table have it in int16
    page.select_option("#q-export-config", "custom")
    with page.expect_download() as info:
        page.click("#q-download-qdq")
    info.value.save_as(str(tmp_path / "custom.qdq.onnx"))
    assert zero_point_type(onnx.load(str(tmp_path / "custom.qdq.onnx")), switch) == onnx.TensorProto.INT16
    with page.expect_download() as info:
        page.click("#q-download-table")
    table = json.loads(Path(info.value.path()).read_text())
    assert table["format"] == "onnx-workbench/quant-table" and table["tensors"][switch]["dtype"] == "int16"

    # a reload keeps the analysis; the readiness summary now links the worst tensor
    page.reload()
    page.wait_for_function("document.body.dataset.quantJob !== undefined && document.getElementById('busy').hidden")
    page.keyboard.press("Escape")
    text = readiness_text(page)
    assert "Quantization analysed" in text and f"hybrid {report['verdict']['hybrid']['grade']}" in text
    grade_class = {"good": "good", "marginal": "warn", "poor": "bad"}[report["verdict"]["hybrid"]["grade"]]
    assert page.locator(f"#readiness .ready-item.{grade_class}", has_text="Quantization analysed").count() == 1
    assert time.monotonic() - started < 180, "the quantization UI test should stay within 3 minutes"
    assert (ARTIFACTS / "q05-hybrid.png").exists()


def test_bad_calibration_data_and_cancel(page: Any, server: str, fixture_model: Any, tmp_path: Path) -> None:
    sid = open_model(page, server, fixture_model("ppocrv4_det"))
    fixed = fix_dims_by_api(server, sid)
    page.reload()
    page.wait_for_function(f"document.body.dataset.version === '{fixed}' && document.getElementById('busy').hidden")

    # arrays under the wrong name: the dialog shows the server's reason and stays open
    np.savez(tmp_path / "wrong.npz", y=np.zeros((1, 3, 640, 640), np.float32))
    page.click("#btn-quant")
    page.click("#q-analyse")
    page.set_input_files("#quant-files", str(tmp_path / "wrong.npz"))
    page.click("#dialog-submit")
    page.wait_for_function("document.querySelector('#dialog .error').textContent.length > 0")
    assert "input names do not match" in page.inner_text("#dialog .error")
    page.problems[:] = [p for p in page.problems if "422" not in p]  # type: ignore[attr-defined]

    # random data instead, then Cancel while it runs: the job ends cancelled and no result is shown
    page.select_option("#quant-source", "random")
    page.fill("#quant-random", "64")
    page.click("#dialog-submit")
    page.wait_for_function("Number(document.getElementById('quant-progress')?.value) > 0", timeout=60_000)
    page.click("#dialog-cancel")
    page.wait_for_selector("#dialog-backdrop", state="hidden")
    deadline = time.monotonic() + 60
    while True:
        listing = json.loads(urllib.request.urlopen(f"{server}/api/sessions/{sid}/quant", timeout=10).read())
        if listing["analyses"][0]["state"] == "cancelled":
            break
        assert time.monotonic() < deadline, listing
        time.sleep(0.3)
    page.wait_for_function("window.__editor.quant.job && window.__editor.quant.job.state === 'cancelled'")
    assert page.locator("#q-table").count() == 0
    assert page.evaluate("window.__editor.quant.result") is None


def analyse_by_api(server: str, sid: str, npz: Path) -> str:
    """Start the default analysis of the session's model on `npz` through the REST API; wait until it
    has succeeded and return its job id."""
    boundary = "----onnx-workbench-e2e"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="data"; filename="{npz.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + npz.read_bytes()
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="settings"\r\n\r\n{{}}\r\n--{boundary}--\r\n'
        ).encode()
    )
    request = urllib.request.Request(
        f"{server}/api/sessions/{sid}/quant",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    job = json.loads(urllib.request.urlopen(request, timeout=60).read())["job_id"]
    deadline = time.monotonic() + 240
    while True:
        state = json.loads(urllib.request.urlopen(f"{server}/api/jobs/{job}", timeout=10).read())
        if state["state"] in ("succeeded", "failed", "cancelled", "interrupted"):
            assert state["state"] == "succeeded", state
            return job
        assert time.monotonic() < deadline, f"the analysis did not finish in time: {state}"
        time.sleep(0.5)


def op_colours(page: Any) -> dict[str, str]:
    """node id -> the heat-map colour of its box, for every op box of the drawing."""
    return page.evaluate("""() => { const gv = window.__editor.graphView; const out = {};
        gv.drawing.nodes.forEach((b, i) => { if (b.kind === 'op') out[b.id] = gv.colorOverride(i); }); return out; }""")


def check_error_views(page: Any, report: dict[str, Any], tmp_path: Path) -> None:
    """Where the error is born and the precision curve, on a page that shows `report`: the table's
    columns, the heat-map modes, the chart along the graph's depth, the curve and its export."""
    names = list(report["tensors"])

    def producer(tensor: str) -> str:
        return page.evaluate("(t) => window.__editor.quant.producerOf(t)", tensor)

    page.click("#q-tab-layers")
    page.wait_for_selector("#q-table")

    # the table: sorted by sensitivity rank, the report's most sensitive point comes first, its numbers in the new
    # columns
    page.click("th[data-key='sens/rank']")
    first = page.locator("#q-table tbody tr").first
    top = report["sensitivity"][0]["tensor"]
    assert first.get_attribute("data-tensor") == top

    def cell(col: str) -> str:
        return first.locator(f"td[data-col='{col}']").inner_text()

    assert cell("sens/rank") == "#1"
    acc, local = report["accumulated"][top], report["local"][top]
    assert cell("acc/cosine") == ("1" if acc["cosine"] == 1 else f"{acc['cosine']:.4f}")
    assert cell("acc/sqnr") == ("\u221e" if acc["sqnr_db"] is None else f"{acc['sqnr_db']:.1f}")
    assert cell("local") == ("\u221e" if local["sqnr_db"] is None else f"{local['sqnr_db']:.1f}")
    sens = report["sensitivity"][0]["output_sqnr_db"]
    assert cell("sens") == ("\u221e" if sens is None else f"{sens:.1f}")
    # sorted by accumulated cosine: the point where the fully quantized model is furthest from the float one
    page.click("th[data-key='acc/cosine']")
    lowest = min((e["cosine"], names.index(t), t) for t, e in report["accumulated"].items() if e["cosine"] is not None)[
        2
    ]
    assert page.locator("#q-table tbody tr").first.get_attribute("data-tensor") == lowest
    numbers = page.eval_on_selector_all(
        "#q-table tbody td[data-col='acc/cosine']", "tds => tds.map(td => td.textContent)"
    )
    assert sum(1 for v in numbers if v.replace(".", "", 1).isdigit()) == sum(
        1 for e in report["accumulated"].values() if e["cosine"] is not None
    )

    # the heat-map: switching the mode recolours the nodes, and the legend names the mode
    page.check("#q-heatmap")
    page.wait_for_selector("#heat-legend:not([hidden]) svg.heat-legend")
    before = op_colours(page)
    page.select_option("#heat-metric", "accumulated/cosine")
    page.wait_for_selector("#heat-legend[data-mode='accumulated/cosine']")
    after = op_colours(page)
    assert sum(before[n] != after[n] for n in before) > len(before) // 4
    assert "accumulated cosine" in page.inner_text("#heat-legend")
    r, g, _ = (int(after[producer(lowest)][k : k + 2], 16) for k in (1, 3, 5))
    assert r > g  # the lowest cosine is on the red side of the scale
    page.select_option("#heat-metric", "sensitivity")
    page.wait_for_selector("#heat-legend[data-mode='sensitivity']")
    assert op_colours(page) != after
    page.select_option("#heat-metric", "uint8/minmax")
    page.wait_for_selector("#heat-legend[data-mode='uint8/minmax']")
    assert op_colours(page) == before

    # the chart along the graph's depth: one mark per point, in the report's (topological) order; a click selects
    # the point
    page.click("#q-tab-depth")
    page.wait_for_selector("#q-depth-chart svg")
    assert page.locator("#q-depth-chart rect.point").count() == len(names)
    marks = page.eval_on_selector_all(
        "#q-depth-chart circle.mark[data-series='acc-cosine']", "cs => cs.map(c => c.dataset.key)"
    )
    assert marks == [t for t in names if report["accumulated"].get(t, {}).get("cosine") is not None]
    assert len(marks) > len(names) // 2
    band = page.locator(f"#q-depth-chart rect.point[data-key='{lowest}']")
    assert (
        band.locator("title")
        .text_content()
        .split("\n")[0]
        .endswith(f"{lowest} ({report['tensors'][lowest].get('op_type') or ''})")
    )
    band.click()
    assert page.evaluate("window.__editor.selection.nodes") == [producer(lowest)]
    assert band.get_attribute("class") == "point selected"
    page.wait_for_selector("#q-error-facts")  # the sidebar's section of the selected point says it too
    assert f"accumulated cosine {report['accumulated'][lowest]['cosine']:.4f}" in page.inner_text("#q-error-facts")

    # the precision curve: a point clicked becomes "your choice", and the QDQ export carries its int16 points
    page.click("#q-tab-hybrid")
    curve, knee = report["recommendation"]["curve"], report["recommendation"]["knee"]
    assert page.locator("#q-curve-chart circle.mark[data-series='sqnr']").count() == sum(
        1 for c in curve if any(o["sqnr_db"] is not None or o["cosine"] == 1 for o in c["outputs"].values())
    )
    assert "knee" in page.inner_text("#q-curve-chart")
    grades = page.eval_on_selector_all(
        "#q-curve-chart circle.mark[data-series='sqnr']", "cs => cs.map(c => c.getAttribute('fill'))"
    )
    assert set(grades) <= {"#15803d", "#d97706", "#c62828"}
    pick = next(i for i, c in enumerate(curve) if i != knee and c["int16"])
    page.locator(f"#q-curve-chart rect.point[data-index='{pick}']").click()
    assert f"k = {curve[pick]['k']} " in page.inner_text("#q-curve-choice")
    assert page.evaluate("[...window.__editor.quant.int16]") == curve[pick]["int16"]
    assert page.input_value("#q-export-config") == "custom"
    outputs = list(curve[pick]["outputs"])
    assert page.locator(".e2e-sqnr rect.bar[data-key='custom']").count() == len(outputs)
    with page.expect_download() as info:
        page.click("#q-download-qdq")
    url = page.evaluate("window.__lastDownload")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["config"] == ["hybrid"] and json.loads(query["int16"][0]) == curve[pick]["int16"]
    info.value.save_as(str(tmp_path / "picked.qdq.onnx"))
    picked = onnx.load(str(tmp_path / "picked.qdq.onnx"))
    assert zero_point_type(picked, curve[pick]["int16"][0]) == onnx.TensorProto.INT16
    # the knee clicked again: back to the recommendation, exported as the hybrid itself
    page.locator(f"#q-curve-chart rect.point[data-index='{knee}']").click()
    assert sorted(page.evaluate("[...window.__editor.quant.int16]")) == sorted(report["recommendation"]["int16"])
    assert page.input_value("#q-export-config") == "hybrid"
    source = report["error_source"]["dominant"]
    assert page.inner_text("#q-error-source").startswith(f"{source.capitalize()} dominate")
    top10 = page.eval_on_selector_all("#q-sensitivity-top button", "bs => bs.map(b => b.title)")
    assert top10 == [s["tensor"] for s in report["sensitivity"][:10]]


def test_where_the_error_is_born_and_the_precision_curve(
    page: Any, server: str, fixture_model: Any, tmp_path: Path
) -> None:
    sid = open_model(page, server, fixture_model("ppocrv4_det"))
    fix_dims_by_api(server, sid)
    analyse_by_api(server, sid, calibration_npz(tmp_path / "calib.npz"))
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.reload()  # the page finds the session's analysis on the server
    page.wait_for_function("document.body.dataset.quantJob !== undefined && document.getElementById('busy').hidden")
    page.click("#btn-quant")
    report = page.evaluate("window.__editor.quant.result.report")
    check_error_views(page, report, tmp_path)

    # the most sensitive point's link selects its node; the picture shows it on the accumulated-cosine heat-map
    page.select_option("#heat-metric", "accumulated/cosine")
    page.locator("#q-sensitivity-top button").first.click()
    assert page.evaluate("window.__editor.selection.nodes") == [
        page.evaluate("(t) => window.__editor.quant.producerOf(t)", report["sensitivity"][0]["tensor"])
    ]
    page.evaluate(
        "document.querySelector('#quant-dock .dock-body').scrollTop = 0;"
        " document.getElementById('sidebar').scrollTop = 0"
    )
    page.wait_for_timeout(300)
    path = shot(page, "q06-precision-curve")
    shutil.copy(path, ROOT / "docs" / "screenshot-quant-curve.png")
