// Canvas 2D renderer of a laid-out graph. Only what is on screen is drawn (a grid index finds it),
// with less detail when zoomed out: full boxes with attribute rows, then titles only, then plain
// coloured blocks batched by colour. Measured on 20,000 nodes this keeps pan frames well under
// 33 ms, where an SVG of every node takes seconds to build and ~140 ms a frame.
import { CATEGORY_COLORS } from "./colors.js";
import { edgeDistance } from "./geometry.js";
import { buildMinimap, drawMinimapView, minimapTo } from "./minimap.js";
import { drawEdges, drawNodes } from "./paint.js";

const CELL = 400;
const DETAIL_K = 0.55;
const TITLE_K = 0.22;
const MINIMAP_MIN_CANVAS_WIDTH = 800;  // narrower (side panels open): the minimap would cover the graph, so it hides

function cellKey(cx, cy) { return (cx + 32768) * 65536 + (cy + 32768); }

export class GraphView {
  // box: the layout's box metrics {title_h, row_h, rows_pad, pad_x} (GET /api/vocabulary), which boxes are drawn with
  constructor(canvas, minimap, handlers = {}, box) {
    this.canvas = canvas;
    this.box = box;
    this.ctx = canvas.getContext("2d");
    this.minimap = minimap;
    this.handlers = handlers;
    this.cam = { x: 0, y: 0, k: 1 };
    this.drawing = null;
    this.selected = new Set();
    this.selectedTensor = null;
    this.markedNodes = new Map(); // node index -> "dd" (data dependent) | "match"
    this.markedTensors = new Set(); // tensors drawn in the warning colour (not static)
    this.colorOverride = null; // (node index) -> CSS colour or null: a colour mode such as the quantization heat-map
    this.frameMs = [];
    this.pending = false;
    this.stamp = 1;
    this._bindEvents();
    new ResizeObserver(() => this._resize()).observe(canvas);
    this._resize();
  }

  // -- data ------------------------------------------------------------------------------------
  setDrawing(drawing, { keepCamera = false } = {}) {
    const t0 = performance.now();
    this.drawing = drawing;
    const nodes = drawing.nodes;
    const n = nodes.length;
    this.nx0 = new Float32Array(n); this.ny0 = new Float32Array(n);
    this.nx1 = new Float32Array(n); this.ny1 = new Float32Array(n);
    this.byId = new Map();
    this.nodeGrid = new Map();
    for (let i = 0; i < n; i++) {
      const b = nodes[i];
      this.nx0[i] = b.x - b.w / 2; this.nx1[i] = b.x + b.w / 2;
      this.ny0[i] = b.y; this.ny1[i] = b.y + b.h;
      this.byId.set(b.id, i);
      this._insert(this.nodeGrid, i, this.nx0[i], this.ny0[i], this.nx1[i], this.ny1[i]);
      b._text = null;
    }
    const edges = drawing.edges;
    this.edgeGrid = new Map();
    this.labelled = new Uint8Array(edges.length);  // 1 + the label's line among those leaving one point
    const seen = new Set();
    const perStart = new Map();
    for (let e = 0; e < edges.length; e++) {
      this._insertSegments(e, edges[e].pts);
      const key = `${edges[e].from}|${edges[e].t}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const start = `${edges[e].pts[0]},${edges[e].pts[1]}`;  // the outputs of one node can leave from one point
      const line = perStart.get(start) || 0;
      perStart.set(start, line + 1);
      this.labelled[e] = 1 + Math.min(line, 250);
    }
    this.stubsOf = new Map();
    for (const stub of drawing.stubs) {
      if (!this.stubsOf.has(stub.to)) this.stubsOf.set(stub.to, []);
      this.stubsOf.get(stub.to).push(stub);
    }
    this.nodeSeen = new Uint32Array(n);
    this.edgeSeen = new Uint32Array(edges.length);
    this.edgesByTensor = new Map();
    edges.forEach((edge, i) => {
      if (!this.edgesByTensor.has(edge.t)) this.edgesByTensor.set(edge.t, []);
      this.edgesByTensor.get(edge.t).push(i);
    });
    buildMinimap(this);
    if (!keepCamera) this.home();
    this.buildMs = performance.now() - t0;
    this.render();
  }

  _insert(grid, i, x0, y0, x1, y1) {
    const cx0 = Math.floor(x0 / CELL), cx1 = Math.floor(x1 / CELL);
    const cy0 = Math.floor(y0 / CELL), cy1 = Math.floor(y1 / CELL);
    for (let cx = cx0; cx <= cx1; cx++) {
      for (let cy = cy0; cy <= cy1; cy++) {
        const key = cellKey(cx, cy);
        let list = grid.get(key);
        if (!list) { list = []; grid.set(key, list); }
        list.push(i);
      }
    }
  }

  // Long edges are indexed segment by segment, so a skip connection does not fill a wide box of cells.
  _insertSegments(e, p) {
    for (let j = 0; j + 3 < p.length; j += 2) {
      this._insert(this.edgeGrid, e, Math.min(p[j], p[j + 2]), Math.min(p[j + 1], p[j + 3]),
        Math.max(p[j], p[j + 2]), Math.max(p[j + 1], p[j + 3]));
    }
  }

  // -- camera ----------------------------------------------------------------------------------
  _resize() {
    const dpr = window.devicePixelRatio || 1;
    const r = this.canvas.getBoundingClientRect();
    this.W = Math.max(1, r.width); this.H = Math.max(1, r.height);
    this.canvas.width = Math.round(this.W * dpr);
    this.canvas.height = Math.round(this.H * dpr);
    this.dpr = dpr;
    if (this.minimap) {  // on a canvas narrowed by side panels the minimap would cover the graph itself
      const hide = this.W < MINIMAP_MIN_CANVAS_WIDTH;
      if (hide !== this.minimap.hidden) {
        this.minimap.hidden = hide;
        if (!hide && this.drawing) buildMinimap(this);
      }
    }
    this.render();
  }

  // The width of the canvas left of the minimap: fitting and centring aim there, so it hides nothing.
  freeWidth() {
    const mm = this.minimap;
    if (!mm || mm.hidden) return this.W;
    return Math.max(this.W / 2, this.W - mm.getBoundingClientRect().width - 20);
  }

  fit() {
    if (!this.drawing) return;
    const d = this.drawing;
    const W = this.freeWidth();
    const k = Math.min(W / (d.width + 60), this.H / (d.height + 60), 1.5);
    this.cam = { k, x: -((W / k) - d.width) / 2, y: -((this.H / k) - d.height) / 2 };
    this.render();
  }

  // The first view: the top of the graph, readable, centred on the graph inputs.
  home() {
    const d = this.drawing;
    if (!d) return;
    const W = this.freeWidth();
    if (d.height * Math.min(1, W / (d.width + 60)) < this.H * 1.2) { this.fit(); return; }
    const k = Math.max(0.6, Math.min(1, W / (d.width + 60)));
    const inputs = d.nodes.filter((b) => b.kind === "input");
    const cx = inputs.length ? inputs.reduce((a, b) => a + b.x, 0) / inputs.length : d.width / 2;
    this.cam = { k, x: cx - W / k / 2, y: -20 };
    this.render();
  }

  zoomAt(factor, sx = this.W / 2, sy = this.H / 2) {
    const k = Math.min(4, Math.max(0.0005, this.cam.k * factor));
    const wx = this.cam.x + sx / this.cam.k, wy = this.cam.y + sy / this.cam.k;
    this.cam = { k, x: wx - sx / k, y: wy - sy / k };
    this.render();
  }

  panBy(dx, dy) {
    this.cam.x -= dx / this.cam.k;
    this.cam.y -= dy / this.cam.k;
    this.render();
  }

  centerOn(i, minK = 0.8) {
    const b = this.drawing.nodes[i];
    const k = Math.max(this.cam.k, minK);
    this.cam = { k, x: b.x - this.freeWidth() / k / 2, y: b.y + b.h / 2 - this.H / k / 2 };
    this.render();
  }

  centerOnTensor(name) {
    const list = this.edgesByTensor.get(name);
    if (list && list.length) {
      const p = this.drawing.edges[list[0]].pts;
      const k = Math.max(this.cam.k, 0.8);
      this.cam = { k, x: p[0] - this.freeWidth() / k / 2, y: p[1] - this.H / k / 2 };
      this.render();
    }
  }

  // -- drawing ---------------------------------------------------------------------------------
  render() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  _visible(grid, seen, x0, y0, x1, y1) {
    const stamp = this.stamp;
    const out = [];
    const cx0 = Math.floor(x0 / CELL), cx1 = Math.floor(x1 / CELL);
    const cy0 = Math.floor(y0 / CELL), cy1 = Math.floor(y1 / CELL);
    for (let cx = cx0; cx <= cx1; cx++) {
      for (let cy = cy0; cy <= cy1; cy++) {
        const list = grid.get(cellKey(cx, cy));
        if (!list) continue;
        for (let j = 0; j < list.length; j++) {
          const i = list[j];
          if (seen[i] !== stamp) { seen[i] = stamp; out.push(i); }
        }
      }
    }
    return out;
  }

  draw() {
    const t0 = performance.now();
    const ctx = this.ctx;
    const { k } = this.cam;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.drawing) return;
    const x0 = this.cam.x, y0 = this.cam.y, x1 = x0 + this.W / k, y1 = y0 + this.H / k;
    const level = k >= DETAIL_K ? 2 : k >= TITLE_K ? 1 : 0;
    if (level === 0 && this._drawOverview(x0, y0)) {
      this.lastFrameMs = performance.now() - t0;
      drawMinimapView(this);
      if (this.handlers.onFrame) this.handlers.onFrame(this);
      return;
    }
    this.stamp++;
    const nodes = this._visible(this.nodeGrid, this.nodeSeen, x0, y0, x1, y1);
    const edges = this._visible(this.edgeGrid, this.edgeSeen, x0, y0, x1, y1);
    ctx.setTransform(k * this.dpr, 0, 0, k * this.dpr, -x0 * k * this.dpr, -y0 * k * this.dpr);
    drawEdges(this, edges, level);
    drawNodes(this, nodes, level);
    this.visibleCount = nodes.length;
    this.lastFrameMs = performance.now() - t0;
    drawMinimapView(this);
    if (this.handlers.onFrame) this.handlers.onFrame(this);
  }

  // Zoomed far out, the whole graph fits in one bitmap: draw it once per zoom level and selection,
  // then a pan is a single drawImage. Rasterizing thousands of overlapping strokes every frame is
  // what made panning slow at this zoom (the canvas rasterizes after the script, off the clock).
  _drawOverview(x0, y0) {
    const d = this.drawing, k = this.cam.k, dpr = this.dpr;
    const w = Math.ceil((d.width + 40) * k * dpr), hgt = Math.ceil((d.height + 40) * k * dpr);
    if (w > 4096 || hgt > 4096) return false;
    const key = [
      k,
      dpr,
      d,
      this.selected,
      this.selectedTensor,
      this.markedNodes,
      this.markedTensors,
      this.colorOverride,
    ];
    const cached = this.overview;
    if (!cached || cached.key.some((v, i) => v !== key[i])) {
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, w); canvas.height = Math.max(1, hgt);
      const main = this.ctx;
      this.ctx = canvas.getContext("2d");
      this.ctx.setTransform(k * dpr, 0, 0, k * dpr, 20 * k * dpr, 20 * k * dpr);
      const all = d.nodes.map((_, i) => i);
      drawEdges(this, d.edges.map((_, i) => i), 0);
      drawNodes(this, all, 0);
      this.ctx = main;
      this.overview = { key, canvas };
      this.visibleCount = all.length;
    }
    this.ctx.setTransform(1, 0, 0, 1, 0, 0);
    this.ctx.drawImage(this.overview.canvas, Math.round((-x0 - 20) * k * dpr), Math.round((-y0 - 20) * k * dpr));
    return true;
  }

  colorOf(i) {
    const b = this.drawing.nodes[i];
    const over = this.colorOverride && b.kind === "op" ? this.colorOverride(i) : null;
    return over || CATEGORY_COLORS[b.cat] || CATEGORY_COLORS.other;
  }

  // Colour every op box by a function of its index (null: back to the category colours).
  setColorOverride(fn) {
    this.colorOverride = fn || null;
    if (this.drawing) buildMinimap(this);
    this.render();
  }

  // -- hit testing -----------------------------------------------------------------------------
  toWorld(sx, sy) { return [this.cam.x + sx / this.cam.k, this.cam.y + sy / this.cam.k]; }

  hitTest(sx, sy) {
    if (!this.drawing) return null;
    const [wx, wy] = this.toWorld(sx, sy);
    const cell = (grid) => grid.get(cellKey(Math.floor(wx / CELL), Math.floor(wy / CELL))) || [];
    for (const i of cell(this.nodeGrid)) {
      if (wx >= this.nx0[i] && wx <= this.nx1[i] && wy >= this.ny0[i] && wy <= this.ny1[i])
        return { type: "node", index: i };
    }
    const tol = 6 / this.cam.k;
    let best = null, bestD = tol;
    for (const e of cell(this.edgeGrid)) {
      const d = edgeDistance(this.drawing.edges[e].pts, wx, wy);
      if (d < bestD) { bestD = d; best = e; }
    }
    if (best !== null) return { type: "edge", index: best, tensor: this.drawing.edges[best].t };
    return null;
  }

  // -- events ----------------------------------------------------------------------------------
  _bindEvents() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      c.focus();
      drag = { x: e.clientX, y: e.clientY, moved: false, id: e.pointerId };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      drag.moved = true;
      c.classList.add("panning");
      this.panBy(dx, dy);
      drag.x = e.clientX; drag.y = e.clientY;
    });
    c.addEventListener("pointerup", (e) => {
      if (!drag) return;
      c.classList.remove("panning");
      const wasDrag = drag.moved;
      drag = null;
      if (!wasDrag && this.handlers.onClick) {
        const r = c.getBoundingClientRect();
        this.handlers.onClick(this.hitTest(e.clientX - r.left, e.clientY - r.top), e);
      }
    });
    c.addEventListener("dblclick", (e) => {
      const r = c.getBoundingClientRect();
      const hit = this.hitTest(e.clientX - r.left, e.clientY - r.top);
      if (this.handlers.onDoubleClick) this.handlers.onDoubleClick(hit, e);
    });
    c.addEventListener("contextmenu", (e) => {
      e.preventDefault();
      const r = c.getBoundingClientRect();
      if (this.handlers.onContext) this.handlers.onContext(this.hitTest(e.clientX - r.left, e.clientY - r.top), e);
    });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = c.getBoundingClientRect();
      if (e.ctrlKey || e.metaKey || e.altKey) {
        this.zoomAt(Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0025)), e.clientX - r.left, e.clientY - r.top);
      } else {
        const scale = e.deltaMode === 1 ? 16 : 1;
        this.panBy(-e.deltaX * scale, -e.deltaY * scale);
      }
    }, { passive: false });
    if (this.minimap) {
      let mmDrag = false;
      this.minimap.addEventListener("pointerdown", (e) => {
        mmDrag = true;
        this.minimap.setPointerCapture(e.pointerId);
        minimapTo(this, e);
      });
      this.minimap.addEventListener("pointermove", (e) => { if (mmDrag) minimapTo(this, e); });
      this.minimap.addEventListener("pointerup", () => { mmDrag = false; });
    }
  }
}
