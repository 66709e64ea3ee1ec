"""Edits on a 20,000-node graph in the browser: the page reads what changed (graph and layout deltas),
never the whole graph or layout again, and what it then draws is what a fresh load of the same version
draws, box for box, edge for edge and pixel for pixel."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.api.models import blocks_model

from .test_editor import click_node, open_model, version, wait_after

pytestmark = pytest.mark.e2e

# one JSON text: Playwright hands big object trees over far more slowly; "_" keys are the renderer's caches
SNAPSHOT = """() => JSON.stringify({view: window.__editor.view, drawing: window.__editor.drawing},
                                  (key, value) => key.startsWith("_") ? undefined : value)"""
NODE_IDS = "window.__editor.view.graph.nodes.map((n) => n.id)"
BOX_ON_SCREEN = """(id) => {
    const gv = window.__editor.graphView;
    const b = gv.drawing.nodes[gv.byId.get(id)];
    const r = gv.canvas.getBoundingClientRect();
    return [r.left + (b.x - gv.cam.x) * gv.cam.k, r.top + (b.y - gv.cam.y) * gv.cam.k];
}"""

PIXELS = """(cam) => {
    const gv = window.__editor.graphView;
    gv.cam = {...cam};
    gv.draw();
    return gv.canvas.toDataURL("image/png");
}"""


def idle(page: Any) -> None:
    page.wait_for_function("document.body.dataset.version !== undefined && document.getElementById('busy').hidden")


def test_edits_redraw_from_deltas_as_a_fresh_load_draws(page: Any, server: str, tmp_path: Path) -> None:
    sid = open_model(page, server, blocks_model(tmp_path / "blocks.onnx", 20_000))
    assert len(page.evaluate(NODE_IDS)) == 19_998
    paths: list[str] = []
    page.on("request", lambda r: paths.append(urllib.parse.urlsplit(r.url).path))
    v = version(page)

    # rename a node in the sidebar, delete another reconnecting its reader, undo that
    click_node(page, "blk700/matmul")
    page.wait_for_selector("#node-name")
    where = page.evaluate(BOX_ON_SCREEN, "blk700/matmul")
    page.fill("#node-name", "renamed")
    page.press("#node-name", "Enter")
    v = wait_after(page, v)
    assert page.evaluate(BOX_ON_SCREEN, "renamed") == where  # the box keeps its place under its new id
    click_node(page, "blk900/relu", button="right")
    page.get_by_role("button", name="Delete and reconnect").click()
    v = wait_after(page, v)
    ids = set(page.evaluate(NODE_IDS))
    assert "renamed" in ids and "blk700/matmul" not in ids and "blk900/relu" not in ids
    page.click("#graph")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+z")
    v = wait_after(page, v)
    assert v == 3 and "blk900/relu" in page.evaluate(NODE_IDS)

    base = f"/api/sessions/{sid}"
    assert paths.count(f"{base}/graph/delta") == 3 and paths.count(f"{base}/layout/delta") == 3, paths
    assert f"{base}/graph" not in paths and f"{base}/layout" not in paths, paths
    assert page.evaluate("window.__editor.drawing.incremental")

    patched = json.loads(page.evaluate(SNAPSHOT))
    fresh = page.context.new_page()
    fresh.goto(f"{server}/s/{sid}")
    idle(fresh)
    assert version(fresh) == v
    assert json.loads(fresh.evaluate(SNAPSHOT)) == patched
    for node in ("renamed", "blk900/relu", "blk901/matmul"):
        cam = page.evaluate(
            """(id) => { const gv = window.__editor.graphView; gv.centerOn(gv.byId.get(id), 1);
                                         return gv.cam; }""",
            node,
        )
        assert page.evaluate(PIXELS, cam) == fresh.evaluate(PIXELS, cam), f"the picture around {node} differs"
    fresh.close()


def test_a_whole_graph_edit_reads_everything_again(page: Any, server: str, fixture_model: Any) -> None:
    sid = open_model(page, server, fixture_model("ppocr_cls_v2"))
    paths: list[str] = []
    page.on("request", lambda r: paths.append(urllib.parse.urlsplit(r.url).path))
    v = version(page)
    page.click("#btn-tools")
    page.click("[data-action=cleanup]")
    v = wait_after(page, v)
    base = f"/api/sessions/{sid}"
    assert paths.index(f"{base}/graph/delta") < paths.index(f"{base}/graph"), paths  # told to read the view
    assert f"{base}/layout" in paths
    fresh = page.context.new_page()
    fresh.goto(f"{server}/s/{sid}")
    idle(fresh)
    assert version(fresh) == v
    assert json.loads(fresh.evaluate(SNAPSHOT)) == json.loads(page.evaluate(SNAPSHOT))
    fresh.close()
