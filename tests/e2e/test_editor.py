"""The editor in a real browser: open, select, delete with descendants, undo, rename, fix dims, cut,
download, then load and run the downloaded model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from .conftest import ROOT, shot

pytestmark = pytest.mark.e2e


def version(page: Any) -> int:
    return int(page.evaluate("document.body.dataset.version"))


def wait_after(page: Any, old: int) -> int:
    """Wait until the page shows a version newer than `old` (the edit answer was drawn)."""
    page.wait_for_function(f"Number(document.body.dataset.version) > {old} && document.getElementById('busy').hidden")
    return version(page)


def open_model(page: Any, server: str, path: Path) -> str:
    page.goto(server + "/")
    page.set_input_files("#file-input", [str(path)])
    page.wait_for_url("**/s/*")
    page.wait_for_function("document.body.dataset.version !== undefined && document.getElementById('busy').hidden")
    return page.url.rsplit("/", 1)[1]


def assert_declared_static(model: onnx.ModelProto) -> None:
    """What a toolkit reads: every graph output and value_info has integer dims only."""
    for vi in [*model.graph.output, *model.graph.value_info]:
        dims = vi.type.tensor_type.shape.dim
        assert vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims), vi


def download_weight(page: Any, name: str, path: Path, screenshot: str) -> np.ndarray:
    """Select a weight, check its panel shows statistics and a histogram, download it as .npy."""
    page.evaluate("(n) => window.__editor.selectTensor(n, true)", name)
    page.wait_for_selector("#init-histogram svg rect")
    assert page.locator("#init-stats").inner_text().count("\n") >= 4
    shot(page, screenshot)
    with page.expect_download() as info:
        page.click("#act-npy-download")
    info.value.save_as(str(path))
    return np.load(path)


def click_node(page: Any, node_id: str, button: str = "left") -> None:
    """Bring the node's box on screen and click it where it is drawn, as a user would."""
    pos = page.evaluate(
        """(id) => {
        const gv = window.__editor.graphView;
        const i = gv.byId.get(id);
        gv.centerOn(i);
        const b = gv.drawing.nodes[i];
        const r = gv.canvas.getBoundingClientRect();
        return [r.left + (b.x - gv.cam.x) * gv.cam.k, r.top + (b.y + 8 - gv.cam.y) * gv.cam.k];
    }""",
        node_id,
    )
    page.wait_for_timeout(100)
    page.mouse.click(pos[0], pos[1], button=button)


def graph_view(page: Any) -> dict[str, Any]:
    return page.evaluate("window.__editor.view.graph")


def test_edit_session_end_to_end(page: Any, server: str, fixture_model: Any, tmp_path: Path) -> None:
    page.goto(server + "/")
    shot(page, "01-landing")
    sid = open_model(page, server, fixture_model("ppocrv4_det"))
    assert page.locator("#model-name").inner_text() == "ppocrv4_det.onnx"
    assert page.evaluate("window.__editor.drawing.nodes.length") > 300
    shot(page, "02-editor-opened")
    v = version(page)

    # fix the dims in the dims dialog: 1x3x640x640
    page.click("#btn-tools")
    page.click("[data-action=dims]")
    assert page.locator("#dims-inputs [data-dim]").count() == 3  # the input dims first, the rest behind "show all"
    page.fill("[data-dim='p2o.DynamicDimension.0']", "1")
    page.fill("[data-dim='p2o.DynamicDimension.1']", "640")
    page.fill("[data-dim='p2o.DynamicDimension.2']", "640")
    shot(page, "03-dims-dialog")
    page.click("#dialog-submit")
    v = wait_after(page, v)
    assert graph_view(page)["tensors"]["x"]["shape"] == [1, 3, 640, 640]

    # make a tensor in the middle an output, from its panel (found with Ctrl+F)
    page.click("#graph")
    page.keyboard.press("Control+f")
    page.keyboard.type("batch_norm_1.tmp_4")
    page.wait_for_selector("#search-results button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#tensor-name")
    page.get_by_role("button", name="Make output").click()
    v = wait_after(page, v)
    assert "batch_norm_1.tmp_4" in graph_view(page)["outputs"]

    # select a node on the canvas, delete it with its descendants, undo
    click_node(page, "p2o.ConvTranspose.2")
    page.wait_for_selector("#node-name")
    assert page.input_value("#node-name") == "p2o.ConvTranspose.2"
    shot(page, "04-node-selected")
    page.click("#act-delete-desc")
    v = wait_after(page, v)
    view = graph_view(page)
    ids = {n["id"] for n in view["nodes"]}
    assert "p2o.ConvTranspose.2" not in ids and "p2o.Sigmoid.0" not in ids
    assert view["outputs"] == ["batch_norm_1.tmp_4"]
    page.click("#graph")
    page.keyboard.press("Control+z")
    v = wait_after(page, v)
    ids = {n["id"] for n in graph_view(page)["nodes"]}
    assert {"p2o.ConvTranspose.2", "p2o.Sigmoid.0"} <= ids
    assert page.evaluate("window.__editor.drawing.incremental")  # the undo did not re-lay out the graph

    # rename a tensor from the context menu of its producer's panel
    page.keyboard.press("Escape")
    click_node(page, "p2o.Add.280")
    page.wait_for_selector("#node-name")
    page.locator(".io", has_text="p2o.Add.281").get_by_role("button", name="Rename…").click()
    page.fill("#dialog-input", "logits")
    page.click("#dialog-submit")
    v = wait_after(page, v)
    view = graph_view(page)
    assert "logits" in view["tensors"] and "p2o.Add.281" not in view["tensors"]

    # cut at the renamed tensor (it becomes an output, the Sigmoid goes)
    page.keyboard.press("Escape")
    page.evaluate("window.__editor.selectTensor('logits', true)")
    page.wait_for_selector("#act-cut")
    page.click("#act-cut")
    v = wait_after(page, v)
    view = graph_view(page)
    assert sorted(view["outputs"]) == ["batch_norm_1.tmp_4", "logits"]
    assert "p2o.Sigmoid.0" not in {n["id"] for n in view["nodes"]}

    # history panel and shapes panel
    page.click("#btn-history")
    page.wait_for_selector("#history-list li")
    assert page.locator("#history-list li").count() >= 4
    assert "make static p2o.DynamicDimension.0 = 1" in page.inner_text("#history-list")
    page.click("#btn-shapes")
    page.wait_for_selector("#shapes-summary")
    assert "static" in page.inner_text("#shapes-summary")
    shot(page, "05-history-and-shapes")
    from .conftest import ARTIFACTS

    shutil.copy(ARTIFACTS / "05-history-and-shapes.png", tmp_path / "editor.png")

    # download the model and the script
    with page.expect_download() as info:
        page.click("#btn-download")
    assert info.value.suggested_filename.endswith(".edited.onnx")  # never the uploaded file's own name
    model_path = tmp_path / "downloaded.onnx"
    info.value.save_as(str(model_path))
    with page.expect_download() as info:
        page.click("#btn-script")
    script_path = tmp_path / "edits.json"
    info.value.save_as(str(script_path))
    script = json.loads(script_path.read_text())
    assert [e["op"] for e in script["edits"]] == ["make_static", "add_output", "rename_tensor", "extract"]

    model = onnx.load(str(model_path))
    onnx.checker.check_model(model, full_check=True)
    assert_declared_static(model)
    assert [o.name for o in model.graph.output] == ["batch_norm_1.tmp_4", "logits"] or sorted(
        o.name for o in model.graph.output
    ) == ["batch_norm_1.tmp_4", "logits"]
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    outputs = session.run(["logits"], {"x": np.random.default_rng(0).random((1, 3, 640, 640), dtype=np.float32)})
    assert outputs[0].shape == (1, 1, 640, 640)
    assert np.isfinite(outputs[0]).all()
    assert sid in page.url


def test_reload_reopens_session_and_undo_redo_buttons(page: Any, server: str, fixture_model: Any) -> None:
    open_model(page, server, fixture_model("ppocr_cls_v2"))
    v = version(page)
    node = page.evaluate("window.__editor.drawing.nodes.find(b => b.kind === 'op' && b.title === 'Softmax').id")
    click_node(page, node)
    page.wait_for_selector("#node-name")
    page.fill("#node-name", "final_softmax")
    page.press("#node-name", "Enter")
    v = wait_after(page, v)
    page.reload()
    page.wait_for_function("document.body.dataset.version !== undefined && document.getElementById('busy').hidden")
    assert version(page) == v
    assert any(n["name"] == "final_softmax" for n in graph_view(page)["nodes"])
    page.click("#btn-undo")
    v = wait_after(page, v)
    assert not any(n["name"] == "final_softmax" for n in graph_view(page)["nodes"])
    page.click("#btn-redo")
    v = wait_after(page, v)
    assert any(n["name"] == "final_softmax" for n in graph_view(page)["nodes"])


def test_subgraph_body_opens(page: Any, server: str, fixture_model: Any) -> None:
    open_model(page, server, fixture_model("silero_vad_v6"))
    owner = page.evaluate("window.__editor.drawing.nodes.find(b => b.bodies).id")
    # the If's outputs leave its box from one point: their labels are stacked, not drawn over each other
    lines = page.evaluate(
        """(id) => { const gv = window.__editor.graphView; const d = gv.drawing;
        return d.edges.map((e, k) => [e, gv.labelled[k]]).filter(([e, l]) => l && e.label && d.nodes[e.from].id === id)
          .map(([e, l]) => l); }""",
        owner,
    )
    assert len(lines) >= 2 and len(set(lines)) == len(lines), lines
    pos = page.evaluate(
        """(id) => { const gv = window.__editor.graphView; const i = gv.byId.get(id); gv.centerOn(i);
        const b = gv.drawing.nodes[i]; const r = gv.canvas.getBoundingClientRect();
        return [r.left + (b.x - gv.cam.x) * gv.cam.k, r.top + (b.y + 8 - gv.cam.y) * gv.cam.k]; }""",
        owner,
    )
    page.wait_for_timeout(100)
    camera = page.evaluate("({...window.__editor.graphView.cam})")
    page.mouse.dblclick(pos[0], pos[1])
    page.wait_for_selector("#scope-bar:not([hidden])")
    page.wait_for_function("document.getElementById('busy').hidden")
    assert page.evaluate("window.__editor.scope") == [owner, "then_branch"]  # then before else, as it reads
    assert page.evaluate("window.__editor.drawing.nodes.length") > 0
    shot(page, "06-subgraph-body")
    page.get_by_role("button", name="← Back").click()
    page.wait_for_selector("#scope-bar", state="hidden")
    page.wait_for_function("document.getElementById('busy').hidden")
    assert page.evaluate("({...window.__editor.graphView.cam})") == camera  # back where the user was


def test_minimap_never_covers_the_graph_when_side_panels_narrow_it(page: Any, server: str, fixture_model: Any) -> None:
    open_model(page, server, fixture_model("ppocrv4_det"))
    assert page.is_visible("#minimap")
    page.set_viewport_size({"width": 1100, "height": 900})
    page.click("#btn-shapes")
    page.wait_for_selector("#shapes-summary")
    page.wait_for_function("document.getElementById('minimap').hidden")  # the canvas is under 640 px wide
    page.click("#btn-shapes")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.wait_for_function("!document.getElementById('minimap').hidden")
    page.keyboard.press("f")
    covered = page.evaluate("""() => { const gv = window.__editor.graphView;
        const c = gv.canvas.getBoundingClientRect();
        const m = gv.minimap.getBoundingClientRect(); const {x, y, k} = gv.cam;
        return gv.drawing.nodes.filter((b) => {
          const l = c.left + (b.x - b.w / 2 - x) * k, r = c.left + (b.x + b.w / 2 - x) * k;
          const t = c.top + (b.y - y) * k, bt = c.top + (b.y + b.h - y) * k;
          return l < m.right && r > m.left && t < m.bottom && bt > m.top; }).length; }""")
    assert covered == 0  # a fitted graph lies left of the minimap


def test_initializer_panel_add_node_and_script(page: Any, server: str, fixture_model: Any, tmp_path: Path) -> None:
    open_model(page, server, fixture_model("minilm_l6_int8"))
    v = version(page)
    weight = page.evaluate(
        "(() => { const inits = window.__editor.view.graph.initializers;"
        " return Object.keys(inits).find(n => inits[n].shape.length === 2); })()"
    )
    assert download_weight(page, weight, tmp_path / "w.npy", "07-initializer").ndim == 2

    # add a Relu reading the first graph output's producer output
    out = graph_view(page)["outputs"][0]
    page.click("#btn-tools")
    page.click("[data-action=add-node]")
    page.fill("#add-op", "Relu")
    page.dispatch_event("#add-op", "input")
    page.fill("[data-input='0']", out)
    page.fill("[data-output='0']", "relu_extra")
    page.fill("#add-name", "extra_relu")
    shot(page, "08-add-node-dialog")
    page.click("#dialog-submit")
    v = wait_after(page, v)
    assert any(n["id"] == "extra_relu" for n in graph_view(page)["nodes"])

    # apply an edit script from a file: make the new tensor an output
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            {"format": "onnx-workbench/edits", "version": 1, "edits": [{"op": "add_output", "tensor": "relu_extra"}]}
        )
    )
    page.click("#btn-tools")
    with page.expect_file_chooser() as chooser:
        page.click("[data-action=apply-script]")
    chooser.value.set_files(str(script))
    v = wait_after(page, v)
    assert "relu_extra" in graph_view(page)["outputs"]


def test_refused_edit_shows_the_server_message(page: Any, server: str, fixture_model: Any) -> None:
    open_model(page, server, fixture_model("ppocrv4_det"))
    click_node(page, "p2o.Sigmoid.0")
    page.wait_for_selector("#node-name")
    page.keyboard.press("Shift+Delete")  # would remove the only output: refused
    page.wait_for_selector(".toast.error")
    assert "no outputs" in page.inner_text(".toast.error")
    page.evaluate("document.querySelectorAll('.toast').forEach((t) => t.remove())")
    # an attribute onnx's checker accepts but onnxruntime cannot run: refused with onnxruntime's message
    click_node(page, "p2o.Conv.0")
    page.wait_for_selector("[data-attr=kernel_shape]")
    page.fill("[data-attr=kernel_shape]", "5, 5")
    page.dispatch_event("[data-attr=kernel_shape]", "change")
    page.wait_for_selector(".toast.error")
    assert "kernel_shape is not compatible with W shape" in page.inner_text(".toast.error")
    # the browser logs the 422 responses itself; those lines are expected here
    page.problems[:] = [p for p in page.problems if "422" not in p]  # type: ignore[attr-defined]
    assert version(page) == 0


def test_editor_screenshot_for_readme(page: Any, server: str, fixture_model: Any) -> None:
    open_model(page, server, fixture_model("minilm_l6_int8"))
    node = page.evaluate("window.__editor.drawing.nodes.find(b => b.title === 'MatMul').id")
    click_node(page, node)
    page.wait_for_selector("#node-name")
    page.evaluate("window.__editor.graphView.zoomAt(0.9)")
    page.wait_for_timeout(200)
    path = shot(page, "00-readme-editor")
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    shutil.copy(path, docs / "screenshot-editor.png")


def test_recognizer_fixed_in_the_dims_dialog_downloads_fully_static(
    page: Any, server: str, fixture_model: Any, tmp_path: Path
) -> None:
    """PP-OCRv4's recognizer: 3 input dims among 70-odd derived ones; fixed in the dialog, the shapes panel
    and the downloaded file agree that every shape is static, and onnxruntime gives outputs of those shapes."""
    open_model(page, server, fixture_model("ppocrv4_rec"))
    v = version(page)
    page.click("#btn-tools")
    page.click("[data-action=dims]")
    inputs = page.locator("#dims-inputs [data-dim]")
    assert sorted(inputs.evaluate_all("els => els.map(e => e.dataset.dim)")) == [
        "?",
        "p2o.DynamicDimension.0",
        "p2o.DynamicDimension.1",
    ]
    assert not page.locator("#dims-others [data-dim]").first.is_visible()  # derived dims behind "show all"
    for dim, size in (("p2o.DynamicDimension.0", "1"), ("?", "48"), ("p2o.DynamicDimension.1", "320")):
        page.fill(f"#dims-inputs [data-dim='{dim}']", size)
    page.click("#dialog-submit")
    v = wait_after(page, v)
    page.click("#btn-shapes")
    page.wait_for_selector("#shapes-summary")
    assert page.inner_text("#shapes-summary") == "all 861 tensors static"
    with page.expect_download() as info:
        page.click("#btn-download")
    path = tmp_path / "rec.onnx"
    info.value.save_as(str(path))
    model = onnx.load(str(path))
    assert_declared_static(model)
    out = model.graph.output[0]
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [1, 40, 6625]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    result = session.run(None, {"x": np.random.default_rng(0).random((1, 3, 48, 320), dtype=np.float32)})
    assert result[0].shape == (1, 40, 6625)


@pytest.mark.parametrize("kind", ["topk", "nms"])
def test_post_processing_cut_from_the_readiness_box(page: Any, server: str, tmp_path: Path, kind: str) -> None:
    """A detector whose tail is TopK with a constant k (or NMS): the readiness box offers the cut with the
    head outputs it keeps; after it, the download computes those tensors exactly as the original model."""
    from tests.graph.builders import detector_with_tail

    model = detector_with_tail(kind)
    source = tmp_path / f"detector_{kind}.onnx"
    onnx.save(model, source)
    open_model(page, server, source)
    v = version(page)
    page.wait_for_selector("#ready-cut-post")
    assert "h0.out" in page.inner_text(".ready-list")
    if kind == "topk":
        shot(page, "10-post-processing-found")
    page.click("#ready-cut-post")
    v = wait_after(page, v)
    assert sorted(graph_view(page)["outputs"]) == ["h0.out", "h1.out"]
    with page.expect_download() as info:
        page.click("#btn-download")
    path = tmp_path / "cut.onnx"
    info.value.save_as(str(path))
    cut = onnx.load(str(path))
    assert not {n.op_type for n in cut.graph.node} & {"TopK", "NonMaxSuppression"}
    feeds = {"images": np.random.default_rng(0).standard_normal((1, 3, 320, 320)).astype(np.float32)}
    model.graph.output.extend([onnx.helper.make_empty_tensor_value_info(t) for t in ("h0.out", "h1.out")])
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        ["h0.out", "h1.out"], feeds
    )
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["h0.out", "h1.out"], feeds)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_constant_node_weight_shown_downloaded_and_replaced(
    page: Any, server: str, fixture_model: Any, tmp_path: Path
) -> None:
    """ppocrv4_det keeps its weights in Constant nodes: the tensor panel shows their values, statistics and
    histogram, and downloads and replaces them as .npy like an initializer's."""
    open_model(page, server, fixture_model("ppocrv4_det"))
    v = version(page)
    npy = tmp_path / "w.npy"
    weight = download_weight(page, "conv2d_0.w_0", npy, "11-constant-weight")
    assert "held by a constant node" in page.inner_text("#sidebar").lower()
    assert weight.shape == (16, 3, 3, 3)
    np.save(npy, weight * 2)
    page.set_input_files("#npy-file", str(npy))
    v = wait_after(page, v)
    with page.expect_download() as info:
        page.click("#btn-download")
    path = tmp_path / "model.onnx"
    info.value.save_as(str(path))
    node = next(n for n in onnx.load(str(path)).graph.node if n.output[0] == "conv2d_0.w_0")
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(node.attribute[0].t), weight * 2)


def test_pages_work_under_their_content_security_policy(browser: Any, server: str, fixture_model: Any) -> None:
    """With the policy enforced (no inline script or style attribute, nothing from other hosts), the upload
    page opens a model, the editor draws it and a dialog with inline sizes opens, and nothing is refused."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    try:
        response = page.goto(server + "/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        page.set_input_files("#file-input", [str(fixture_model("ppocr_cls_v2"))])
        page.wait_for_url("**/s/*")
        page.wait_for_selector("body[data-version]", state="attached")
        page.wait_for_selector("#busy", state="hidden")
        assert page.evaluate("window.__editor.drawing.nodes.length") > 10
        page.click("#btn-tools")
        page.click("[data-action=add-input]")
        page.wait_for_selector("#input-name")
        assert page.evaluate("document.getElementById('input-name').style.width") == "100%"
        page.click("#dialog-cancel")
        page.click("#btn-quant")
        page.click("#q-analyse")
        page.wait_for_selector("#quant-random", state="attached")
        assert page.evaluate("document.getElementById('quant-random').style.width") == "80px"
        assert not problems, "\n".join(problems)
    finally:
        context.close()


def test_npu_preparation_screenshot_for_readme(page: Any, server: str) -> None:
    """A YOLOv8-style export with dynamic batch, height and width: dims fixed in the dialog, the shapes
    panel and the readiness box show a fully static file and the post-processing cut to make."""
    open_model(page, server, ROOT / "tests" / "data" / "yolo" / "yolo_topk.onnx")
    v = version(page)
    page.click("#btn-tools")
    page.click("[data-action=dims]")
    for dim, size in (("batch", "1"), ("height", "640"), ("width", "640")):
        page.fill(f"#dims-inputs [data-dim='{dim}']", size)
    page.click("#dialog-submit")
    wait_after(page, v)
    page.click("#btn-shapes")
    page.wait_for_selector("#act-cut-post")
    assert page.inner_text("#shapes-summary").startswith("all ")
    assert "/cv2.0/Conv_output_0" in page.inner_text(".ready-list")
    page.evaluate("document.querySelectorAll('.toast').forEach((t) => t.remove())")
    page.wait_for_timeout(200)
    path = shot(page, "00-readme-npu-ready")
    shutil.copy(path, ROOT / "docs" / "screenshot-npu-ready.png")
