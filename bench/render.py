"""Editor rendering benchmark: graph JSON to first drawn frame, and pan frame times, in headless Chromium.

Graphs of 2,000, 10,000 and 20,000 nodes are generated in the shape of the service's graph view:
"transformer" (un-fused encoder layers, Shape side chains, one attention mask feeding every layer)
and "resnet" (conv/bn/relu blocks with skips). For each:

- layout: app/graph/layout.py on the server (Python + igraph), median of runs;
- first frame: in the page, from the layout JSON text in hand to the first frame drawn (parse,
  index, draw), median of runs;
- pan frames: requestAnimationFrame intervals while panning by 8 px a frame, at reading zoom (100 %)
  and with the whole graph fitted on screen;
- the same page drawing Netron's way (one SVG element per box, text and edge, each text measured
  with getBBox, pan by moving the root group), for comparison;
- one edit to redrawn frame in the real editor (a real server, a generated 20,000-node ONNX model):
  from sending the edit to the frame drawn after it, when the page reads the graph and layout deltas
  and, as the baseline in the same page and server, when it reads the whole view and layout again.

    python -m bench.render                      # all sizes, both shapes, then the edit table
    python -m bench.render --nodes 2000 --runs 1 --tables render
    python -m bench.render --tables edit --runs 5

Figures are printed as a Markdown table, never asserted: the machine is shared and timings vary.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.server.routes.vocabulary import get_vocabulary
from app.view.layout import layout_graph
from tests.api.models import blocks_model
from tests.api.server_process import ServerProcess
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "app" / "static"


class _Builder:
    """Accumulates a graph in the graph view's shape (nodes, tensors with producer and consumers)."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.tensors: dict[str, dict[str, Any]] = {}
        self.initializers: dict[str, Any] = {}
        self.inputs: list[str] = []
        self.count = 0

    def tensor(self, name: str, shape: list[Any]) -> dict[str, Any]:
        entry = self.tensors.get(name)
        if entry is None:
            entry = self.tensors[name] = {
                "producer": None,
                "consumers": [],
                "dtype": "float32",
                "shape": shape,
                "is_initializer": False,
                "is_input": False,
                "is_output": False,
            }
        return entry

    def input(self, name: str, shape: list[Any]) -> str:
        self.tensor(name, shape)["is_input"] = True
        self.inputs.append(name)
        return name

    def weight(self, shape: list[int]) -> str:
        name = f"w{len(self.initializers)}"
        self.initializers[name] = {"dtype": "float32", "shape": shape, "bytes": 4, "external": False, "stats": None}
        self.tensor(name, shape)["is_initializer"] = True
        return name

    def op(
        self,
        op_type: str,
        inputs: list[str],
        shape: list[Any],
        attributes: dict[str, Any] | None = None,
        outputs: int = 1,
    ) -> str:
        self.count += 1
        name = f"{op_type}_{self.count}"
        outs = [f"t{self.count}_{k}" for k in range(outputs)]
        self.nodes.append(
            {
                "id": name,
                "name": name,
                "op_type": op_type,
                "domain": "",
                "inputs": inputs,
                "outputs": outs,
                "attributes": attributes or {},
            }
        )
        for t in inputs:
            self.tensor(t, shape)["consumers"].append(name)
        for t in outs:
            self.tensor(t, shape)["producer"] = name
        return outs[0]

    def graph(self, outputs: list[str]) -> dict[str, Any]:
        for o in outputs:
            self.tensors[o]["is_output"] = True
        return {
            "name": "bench",
            "inputs": self.inputs,
            "outputs": outputs,
            "nodes": self.nodes,
            "tensors": self.tensors,
            "initializers": self.initializers,
        }


def transformer(n_nodes: int) -> dict[str, Any]:
    b = _Builder()
    seq = ["batch", "seq", 768]
    x = b.op("Gather", [b.weight([30522, 768]), b.input("input_ids", ["batch", "seq"])], seq)
    m = b.op("Unsqueeze", [b.input("attention_mask", ["batch", "seq"])], ["batch", 1, 1, "seq"], {"axes": [1, 2]})
    m = b.op("Cast", [m], ["batch", 1, 1, "seq"], {"to": 1})
    m = b.op("Sub", [b.weight([]), m], ["batch", 1, 1, "seq"])
    mask = b.op("Mul", [m, b.weight([])], ["batch", 1, 1, "seq"])

    def layer_norm(x: str) -> str:
        mean = b.op("ReduceMean", [x], ["batch", "seq", 1], {"axes": [-1]})
        d = b.op("Sub", [x, mean], seq)
        var = b.op("ReduceMean", [b.op("Pow", [d, b.weight([])], seq)], ["batch", "seq", 1], {"axes": [-1]})
        std = b.op("Sqrt", [b.op("Add", [var, b.weight([])], ["batch", "seq", 1])], ["batch", "seq", 1])
        return b.op("Add", [b.op("Mul", [b.op("Div", [d, std], seq), b.weight([768])], seq), b.weight([768])], seq)

    def heads(x: str) -> str:
        shape = b.op("Shape", [x], [3])
        dim = b.op("Unsqueeze", [b.op("Gather", [shape, b.weight([])], [], {"axis": 0})], [1], {"axes": [0]})
        target = b.op("Concat", [dim, b.weight([1]), b.weight([1]), b.weight([1])], [4], {"axis": 0})
        proj = b.op("Add", [b.op("MatMul", [x, b.weight([768, 768])], seq), b.weight([768])], seq)
        return b.op(
            "Transpose",
            [b.op("Reshape", [proj, target], ["batch", "seq", 12, 64])],
            ["batch", 12, "seq", 64],
            {"perm": [0, 2, 1, 3]},
        )

    while b.count < n_nodes - 60:
        h = layer_norm(x)
        q, k, v = heads(h), heads(h), heads(h)
        scores = b.op(
            "Div",
            [
                b.op(
                    "MatMul",
                    [q, b.op("Transpose", [k], ["batch", 12, 64, "seq"], {"perm": [0, 1, 3, 2]})],
                    ["batch", 12, "seq", "seq"],
                ),
                b.weight([]),
            ],
            ["batch", 12, "seq", "seq"],
        )
        probs = b.op(
            "Softmax",
            [b.op("Add", [scores, mask], ["batch", 12, "seq", "seq"])],
            ["batch", 12, "seq", "seq"],
            {"axis": -1},
        )
        ctx = b.op(
            "Transpose",
            [b.op("MatMul", [probs, v], ["batch", 12, "seq", 64])],
            ["batch", "seq", 12, 64],
            {"perm": [0, 2, 1, 3]},
        )
        ctx = b.op("Reshape", [ctx, b.weight([3])], seq)
        attn = b.op("Add", [b.op("MatMul", [ctx, b.weight([768, 768])], seq), b.weight([768])], seq)
        x = b.op("Add", [x, attn], seq)
        h = layer_norm(x)
        f = b.op(
            "Add",
            [b.op("MatMul", [h, b.weight([768, 3072])], ["batch", "seq", 3072]), b.weight([3072])],
            ["batch", "seq", 3072],
        )
        g = b.op(
            "Mul",
            [
                b.op(
                    "Mul",
                    [
                        f,
                        b.op(
                            "Add",
                            [
                                b.op(
                                    "Erf",
                                    [b.op("Div", [f, b.weight([])], ["batch", "seq", 3072])],
                                    ["batch", "seq", 3072],
                                ),
                                b.weight([]),
                            ],
                            ["batch", "seq", 3072],
                        ),
                    ],
                    ["batch", "seq", 3072],
                ),
                b.weight([]),
            ],
            ["batch", "seq", 3072],
        )
        f = b.op("Add", [b.op("MatMul", [g, b.weight([3072, 768])], seq), b.weight([768])], seq)
        x = b.op("Add", [x, f], seq)
    return b.graph([layer_norm(x)])


def resnet(n_nodes: int) -> dict[str, Any]:
    b = _Builder()
    conv = {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1]}
    x = b.op(
        "Relu",
        [b.op("Conv", [b.input("image", [1, 3, 224, 224]), b.weight([64, 3, 7, 7])], [1, 64, 112, 112], conv)],
        [1, 64, 112, 112],
    )
    block = 0
    while b.count < n_nodes - 10:
        shape = [1, 64, 56, 56]
        y = b.op(
            "Relu",
            [
                b.op(
                    "BatchNormalization",
                    [b.op("Conv", [x, b.weight([64, 64, 3, 3])], shape, conv)] + [b.weight([64]) for _ in range(4)],
                    shape,
                    {"epsilon": 1e-5},
                )
            ],
            shape,
        )
        y = b.op(
            "BatchNormalization",
            [b.op("Conv", [y, b.weight([64, 64, 3, 3])], shape, conv)] + [b.weight([64]) for _ in range(4)],
            shape,
            {"epsilon": 1e-5},
        )
        skip = b.op("Conv", [x, b.weight([64, 64, 1, 1])], shape, {"kernel_shape": [1, 1]}) if block % 4 == 0 else x
        x = b.op("Relu", [b.op("Add", [y, skip], shape)], shape)
        block += 1
    pooled = b.op("GlobalAveragePool", [x], [1, 64, 1, 1])
    return b.graph(
        [b.op("Gemm", [b.op("Flatten", [pooled], [1, 64]), b.weight([1000, 64]), b.weight([1000])], [1, 1000])]
    )


PAGE = """<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<style>html,body{margin:0;height:100%} #graph{position:absolute;inset:0;width:100%;height:100%}
#svg{position:absolute;inset:0;width:100%;height:100%}</style></head>
<body><canvas id="graph"></canvas><svg id="svg" hidden></svg>
<script type="module">
import { GraphView } from "/static/js/canvas/graph-view.js";
const frames = (n, step) => new Promise((resolve) => {
  const times = []; let last = null;
  const tick = (t) => {
    if (last !== null) times.push(t - last);
    last = t; step();
    if (times.length < n) requestAnimationFrame(tick); else resolve(times);
  };
  requestAnimationFrame(tick);
});
const nextFrame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
window.canvasRun = async (url) => {
  const text = await (await fetch(url)).text();
  const t0 = performance.now();
  const drawing = JSON.parse(text);
  const view = window.view || (window.view = new GraphView(document.getElementById("graph"), null, {}, BOX_METRICS));
  view.setDrawing(drawing);
  view.cam = { k: 1, x: drawing.width / 2 - view.W / 2, y: drawing.height / 2 - view.H / 2 };
  view.draw();
  const first = performance.now() - t0;
  await nextFrame();
  const read = await frames(90, () => { view.panBy(8, 8); view.draw(); });
  view.fit(); view.draw();
  const fit = await frames(60, () => { view.panBy(8, 0); view.draw(); });
  return { first, read, fit };
};
window.svgRun = async (url) => {
  // Netron's way: every box, label and edge is an SVG element, built and measured up front.
  const text = await (await fetch(url)).text();
  const t0 = performance.now();
  const d = JSON.parse(text);
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.getElementById("svg"); svg.hidden = false; document.getElementById("graph").hidden = true;
  while (svg.firstChild) svg.firstChild.remove();
  const root = document.createElementNS(NS, "g"); svg.appendChild(root);
  for (const e of d.edges) {
    const p = document.createElementNS(NS, "path");
    let s = `M${e.pts[0]},${e.pts[1]}`; for (let j = 2; j < e.pts.length; j += 2) s += `L${e.pts[j]},${e.pts[j + 1]}`;
    p.setAttribute("d", s); p.setAttribute("stroke", "#888"); p.setAttribute("fill", "none"); root.appendChild(p);
  }
  for (const b of d.nodes) {
    const g = document.createElementNS(NS, "g"); g.setAttribute("transform", `translate(${b.x - b.w / 2},${b.y})`);
    const r = document.createElementNS(NS, "rect");
    r.setAttribute("width", b.w); r.setAttribute("height", b.h);
    r.setAttribute("fill", "#fff"); r.setAttribute("stroke", "#999"); g.appendChild(r);
    const lines = [b.title, ...b.rows.map(([k, v]) => `${k} ${v}`)];
    lines.forEach((line, i) => {
      const t = document.createElementNS(NS, "text");
      t.setAttribute("x", 6); t.setAttribute("y", 14 + i * 14); t.textContent = line; g.appendChild(t);
    });
    root.appendChild(g);
  }
  for (const t of root.querySelectorAll("text")) t.getBBox();
  let x = d.width / 2 - innerWidth / 2, y = d.height / 2 - innerHeight / 2;
  root.setAttribute("transform", `translate(${-x},${-y})`);
  await nextFrame();
  const first = performance.now() - t0;
  const read = await frames(60, () => { x += 8; y += 8; root.setAttribute("transform", `translate(${-x},${-y})`); });
  return { first, read };
};
window.ready = true;
</script></body></html>"""


def _serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            path = path.split("?", 1)[0]
            if path.startswith("/static/"):
                return str(STATIC / path[len("/static/") :])
            return str(folder / path.lstrip("/"))

        def log_message(self, *args: Any) -> None:
            pass

    Handler.extensions_map = {**Handler.extensions_map, ".js": "text/javascript"}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# In the editor page: one edit (or undo) and the frame drawn after it. "delta" is what the editor does
# (editor.applyOrThrow / editor.step read the deltas); "full" is the baseline: the same request, then
# the whole view and layout read again (editor.load, which the editor still uses when a delta is refused).
EDIT_FRAME = """async ([mode, edit]) => {
  const e = window.__editor;
  const entry = document.querySelector("script[type=module][src*='/js/']").src;
  const { api } = await import(entry.replace(/[^/]+$/, "core/api.js"));
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  await frame();
  const t0 = performance.now();
  if (mode === "delta") {
    if (edit) await e.applyOrThrow([edit]); else await e.step("undo");
  } else {
    if (edit) await api.edits(e.sid, [edit], e.version); else await api.undo(e.sid);
    await e.load({ keepCamera: true });
  }
  await frame();  // the editor's own frame was asked for first, so it is drawn by now
  return performance.now() - t0;
}"""


def edit_frames(browser: Any, runs: int) -> list[tuple[str, float, float]]:
    """Median ms from an edit to its redrawn frame, reading deltas and reading everything, at 20,000 nodes."""
    folder = Path(tempfile.mkdtemp(prefix="bench-edit-frame-"))
    model = blocks_model(folder / "blocks_20k.onnx", 20_000)
    (folder / "data").mkdir()
    rows = []
    with ServerProcess(folder / "data") as server:
        page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        page.goto(server.url + "/")
        page.set_input_files("#file-input", [str(model)])
        page.wait_for_url("**/s/*", timeout=120_000)
        page.wait_for_function(
            "document.body.dataset.version !== undefined && document.getElementById('busy').hidden", timeout=120_000
        )
        page.evaluate("window.__editor.graphView.centerOn(window.__editor.graphView.byId.get('blk1601/matmul'), 1)")
        # each pair of edits (None: undo) leaves the model as it was; the modes take turns so that both see
        # the same machine. A rename changes no shape; a delete makes the server infer the shapes again.
        pairs: dict[str, Callable[[int], list[dict[str, Any] | None]]] = {
            "rename_node": lambda k: [
                {"op": "rename_node", "node": f"blk{1600 + 3 * k}/matmul", "to": "renamed"},
                {"op": "rename_node", "node": "renamed", "to": f"blk{1600 + 3 * k}/matmul"},
            ],
            "delete_node (reconnect), undo": lambda k: [
                {"op": "delete_node", "node": f"blk{1600 + 3 * k}/relu", "reconnect": True},
                None,
            ],
        }
        for what, make in pairs.items():
            times: dict[str, list[float]] = {"full": [], "delta": []}
            for k in range(runs):
                for mode in ("full", "delta") if k % 2 == 0 else ("delta", "full"):
                    for edit in make(k):
                        page.wait_for_timeout(
                            1500
                        )  # from idle: the page reads the new version's shape report after each frame
                        times[mode].append(page.evaluate(EDIT_FRAME, [mode, edit]))
            row = (what, statistics.median(times["full"]), statistics.median(times["delta"]))
            rows.append(row)
            print(json.dumps({"edit": what, **{m: [round(t) for t in ts] for m, ts in times.items()}}), flush=True)
        page.close()
    shutil.rmtree(folder, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="2000,10000,20000")
    parser.add_argument("--shapes", default="transformer,resnet")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--svg-max", type=int, default=20000, help="skip the SVG comparison above this size")
    parser.add_argument("--tables", default="render,edit", help="render (drawing large graphs), edit (edit to frame)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    tables = args.tables.split(",")
    if "edit" in tables:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            rows = edit_frames(browser, args.runs)
            browser.close()
        print("\n| one edit to redrawn frame, 20,000 nodes | whole view and layout read again, ms | deltas, ms |")
        print("|---|---|---|")
        for what, full, delta in rows:
            print(f"| {what} | {full:,.0f} | {delta:,.0f} |")
    if "render" not in tables:
        return

    folder = Path(tempfile.mkdtemp(prefix="bench-render-"))
    # the box metrics the page reads from GET /api/vocabulary; this static page has no server behind it
    (folder / "index.html").write_text(PAGE.replace("BOX_METRICS", json.dumps(get_vocabulary().box.model_dump())))
    server, url = _serve(folder)
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for shape in args.shapes.split(","):
            for n in (int(x) for x in args.nodes.split(",")):
                graph = (transformer if shape == "transformer" else resnet)(n)
                layout_s = []
                for _ in range(args.runs):
                    t = time.perf_counter()
                    drawing = layout_graph(graph)
                    layout_s.append(time.perf_counter() - t)
                name = f"{shape}-{n}.json"
                (folder / name).write_text(json.dumps(drawing, separators=(",", ":")))
                canvas = []
                for _ in range(args.runs):
                    page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
                    page.goto(url + "/index.html")
                    page.wait_for_function("window.ready === true")
                    canvas.append(page.evaluate(f"window.canvasRun('/{name}')"))
                    page.close()
                svg = None
                if n <= args.svg_max:
                    page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
                    page.goto(url + "/index.html")
                    page.wait_for_function("window.ready === true")
                    svg = page.evaluate(f"window.svgRun('/{name}')")
                    page.close()
                read = [t for c in canvas for t in c["read"]]
                fit = [t for c in canvas for t in c["fit"]]
                row = {
                    "graph": f"{shape} {len(graph['nodes']):,} nodes",
                    "broadcast": len(drawing["broadcast"]),
                    "layout_s": statistics.median(layout_s),
                    "first_ms": statistics.median(c["first"] for c in canvas),
                    "read": (statistics.median(read), _pct(read, 0.95)),
                    "fit": (statistics.median(fit), _pct(fit, 0.95)),
                    "svg_first_ms": svg["first"] if svg else None,
                    "svg_read": (statistics.median(svg["read"]), _pct(svg["read"], 0.95)) if svg else None,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
        browser.close()
    server.shutdown()
    print()
    print(
        "| graph | server layout s | JSON to first frame, ms | pan frame ms at 100 %, median / p95 | "
        "pan frame ms, whole graph fitted | Netron-style full SVG: first frame ms | "
        "full SVG pan frame ms, median / p95 |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        svg_first = f"{r['svg_first_ms']:,.0f}" if r["svg_first_ms"] is not None else "-"
        svg_read = f"{r['svg_read'][0]:.1f} / {r['svg_read'][1]:.1f}" if r["svg_read"] else "-"
        print(
            f"| {r['graph']} | {r['layout_s']:.2f} | {r['first_ms']:.0f} | {r['read'][0]:.1f} / {r['read'][1]:.1f} | "
            f"{r['fit'][0]:.1f} / {r['fit'][1]:.1f} | {svg_first} | {svg_read} |"
        )


if __name__ == "__main__":
    main()
