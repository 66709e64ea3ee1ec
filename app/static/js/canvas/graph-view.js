// Canvas 2D renderer of a laid-out graph. Only what is on screen is drawn (a grid index finds it),
// with less detail when zoomed out: full boxes with attribute rows, then titles only, then plain
// coloured blocks batched by colour. Measured on 20,000 nodes this keeps pan frames well under
// 33 ms, where an SVG of every node takes seconds to build and ~140 ms a frame.

export const CATEGORY_COLORS = {
  layer: "#2f5fb3", activation: "#a3302a", pool: "#2e7d32", normalization: "#00695c", shape: "#6d4c41",
  quantization: "#7b1fa2", control: "#d35400", constant: "#6b7280", custom: "#ad1457", other: "#455a64",
  input: "#1f2937", output: "#1f2937",
};

const CELL = 400;
const TITLE_H = 20;
const ROW_H = 14;
const PAD_X = 8;
const DETAIL_K = 0.55;
const TITLE_K = 0.22;
const EDGE_COLOR = "#8a94a6";
const MARK_EDGE = "#e07a00";
const SELECT = "#2563eb";
const MINIMAP_MIN_CANVAS_WIDTH = 800;  // narrower (side panels open): the minimap would cover the graph, so it hides

function cellKey(cx, cy) { return (cx + 32768) * 65536 + (cy + 32768); }

export class GraphView {
  constructor(canvas, minimap, handlers = {}) {
    this.canvas = canvas;
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
    this._buildMinimap();
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
        if (!hide && this.drawing) this._buildMinimap();
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
      this._drawMinimapView();
      if (this.handlers.onFrame) this.handlers.onFrame(this);
      return;
    }
    this.stamp++;
    const nodes = this._visible(this.nodeGrid, this.nodeSeen, x0, y0, x1, y1);
    const edges = this._visible(this.edgeGrid, this.edgeSeen, x0, y0, x1, y1);
    ctx.setTransform(k * this.dpr, 0, 0, k * this.dpr, -x0 * k * this.dpr, -y0 * k * this.dpr);
    this._drawEdges(edges, level);
    this._drawNodes(nodes, level);
    this.visibleCount = nodes.length;
    this.lastFrameMs = performance.now() - t0;
    this._drawMinimapView();
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
      this._drawEdges(d.edges.map((_, i) => i), 0);
      this._drawNodes(all, 0);
      this.ctx = main;
      this.overview = { key, canvas };
      this.visibleCount = all.length;
    }
    this.ctx.setTransform(1, 0, 0, 1, 0, 0);
    this.ctx.drawImage(this.overview.canvas, Math.round((-x0 - 20) * k * dpr), Math.round((-y0 - 20) * k * dpr));
    return true;
  }

  _edgePath(ctx, p, smooth) {
    ctx.moveTo(p[0], p[1]);
    for (let j = 2; j < p.length; j += 2) {
      const ax = p[j - 2], ay = p[j - 1], bx = p[j], by = p[j + 1];
      if (!smooth || ax === bx) { ctx.lineTo(bx, by); continue; }
      const my = (by - ay) / 2;
      ctx.bezierCurveTo(ax, ay + my, bx, by - my, bx, by);
    }
  }

  _drawEdges(list, level) {
    const ctx = this.ctx;
    const k = this.cam.k;
    const edges = this.drawing.edges;
    const smooth = level > 0;
    const groups = [[EDGE_COLOR, 1, []], [MARK_EDGE, 2, []], [SELECT, 2.5, []]];
    for (const e of list) {
      const t = edges[e].t;
      groups[t === this.selectedTensor ? 2 : this.markedTensors.has(t) ? 1 : 0][2].push(e);
    }
    for (const [color, width, members] of groups) {
      if (!members.length) continue;
      ctx.strokeStyle = color;
      ctx.lineWidth = level === 2 ? width : width / k * 0.8;
      ctx.beginPath();
      for (const e of members) this._edgePath(ctx, edges[e].pts, smooth);
      ctx.stroke();
      if (level > 0) {
        ctx.fillStyle = color;
        ctx.beginPath();
        for (const e of members) {
          const p = edges[e].pts, n = p.length;
          const x = p[n - 2], y = p[n - 1];
          ctx.moveTo(x, y); ctx.lineTo(x - 3.5, y - 7); ctx.lineTo(x + 3.5, y - 7); ctx.closePath();
        }
        ctx.fill();
      }
    }
    if (level === 2) {
      ctx.font = "9px system-ui, sans-serif";
      ctx.fillStyle = "#5b6472";
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      for (const e of list) {
        if (!this.labelled[e] || !edges[e].label) continue;
        const p = edges[e].pts;
        ctx.fillText(edges[e].label, p[0] + 4, p[1] + Math.min(14, (p[3] - p[1]) / 2) + (this.labelled[e] - 1) * 11);
      }
    }
  }

  _text(b) {
    // Titles and rows clipped to the box once (the font is fixed), not on every frame.
    if (b._text) return b._text;
    const ctx = this.ctx;
    const fit = (s, max) => {
      if (ctx.measureText(s).width <= max) return s;
      let lo = 0, hi = s.length;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (ctx.measureText(s.slice(0, mid) + "\u2026").width <= max) lo = mid; else hi = mid - 1;
      }
      return s.slice(0, lo) + "\u2026";
    };
    ctx.font = "600 11px system-ui, sans-serif";
    const title = fit(b.title, b.w - 2 * PAD_X);
    ctx.font = "11px system-ui, sans-serif";
    const rows = b.rows.map(([key, value]) => {
      const kw = key ? ctx.measureText(key + "  ").width : 0;
      return [key, fit(value, b.w - 2 * PAD_X - kw), kw];
    });
    b._text = { title, rows };
    return b._text;
  }

  _drawNodes(list, level) {
    const ctx = this.ctx;
    const nodes = this.drawing.nodes;
    const k = this.cam.k;
    if (level === 0) {
      const byColor = new Map();
      for (const i of list) {
        const c = this._color(i);
        if (!byColor.has(c)) byColor.set(c, []);
        byColor.get(c).push(i);
      }
      const min = 1.5 / k; // at least a pixel and a half, so tiny graphs stay visible
      for (const [color, members] of byColor) {
        ctx.fillStyle = color;
        ctx.beginPath();
        for (const i of members) {
          ctx.rect(
            this.nx0[i],
            this.ny0[i],
            Math.max(min, this.nx1[i] - this.nx0[i]),
            Math.max(min, this.ny1[i] - this.ny0[i]),
          );
        }
        ctx.fill();
      }
      this._drawMarks(list, 2 / k);
      return;
    }
    for (const i of list) {
      const b = nodes[i];
      const x = this.nx0[i], y = this.ny0[i], w = b.w, h = b.h;
      const color = this._color(i);
      const io = b.kind !== "op";
      const r = io ? Math.min(10, h / 2) : 4;
      ctx.beginPath();
      ctx.roundRect(x, y, w, h, r);
      ctx.fillStyle = io ? "#f3f4f6" : this.colorOverride ? tint(color) : "#fff";
      ctx.fill();
      ctx.lineWidth = 1;
      ctx.strokeStyle = io ? "#6b7280" : "#b5bcc8";
      ctx.stroke();
      if (!io) {
        ctx.beginPath();
        ctx.roundRect(x, y, w, TITLE_H, b.rows.length ? [4, 4, 0, 0] : 4);
        ctx.fillStyle = color;
        ctx.fill();
      }
      const text = this._text(b);
      ctx.textBaseline = "middle";
      ctx.textAlign = "center";
      ctx.font = "600 11px system-ui, sans-serif";
      ctx.fillStyle = io ? "#111827" : this.colorOverride ? inkOn(color) : "#fff";
      ctx.fillText(text.title, b.x, y + TITLE_H / 2 + 0.5);
      if (b.bodies) {
        ctx.textAlign = "right";
        ctx.fillText("\u25b8", x + w - 4, y + TITLE_H / 2);
      }
      if (level === 2 && text.rows.length) {
        ctx.font = "11px system-ui, sans-serif";
        let ry = y + TITLE_H + 2 + ROW_H / 2;
        for (const [key, value, kw] of text.rows) {
          if (io) {
            ctx.textAlign = "center";
            ctx.fillStyle = "#4b5563";
            ctx.fillText(value, b.x, ry);
          } else {
            ctx.textAlign = "left";
            if (key) { ctx.fillStyle = "#6b7280"; ctx.fillText(key, x + PAD_X, ry); }
            ctx.fillStyle = "#111827";
            ctx.fillText(value, x + PAD_X + kw, ry);
          }
          ry += ROW_H;
        }
      }
      const stubs = this.stubsOf.get(i);
      if (stubs && level === 2) this._drawStubs(b, stubs);
    }
    this._drawMarks(list, 2);
  }

  _color(i) {
    const b = this.drawing.nodes[i];
    const over = this.colorOverride && b.kind === "op" ? this.colorOverride(i) : null;
    return over || CATEGORY_COLORS[b.cat] || CATEGORY_COLORS.other;
  }

  // Colour every op box by a function of its index (null: back to the category colours).
  setColorOverride(fn) {
    this.colorOverride = fn || null;
    if (this.drawing) this._buildMinimap();
    this.render();
  }

  _drawStubs(b, stubs) {
    const ctx = this.ctx;
    ctx.font = "9px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    let inCount = 0, outCount = 0;
    for (const s of stubs) {
      const marked = s.t === this.selectedTensor ? SELECT : this.markedTensors.has(s.t) ? MARK_EDGE : "#9aa3b2";
      ctx.strokeStyle = marked; ctx.fillStyle = marked; ctx.lineWidth = 1;
      if (s.in) {
        const x = b.x - b.w / 2 + 10 + 12 * inCount++, y = b.y;
        ctx.beginPath(); ctx.moveTo(x, y - 16); ctx.lineTo(x, y); ctx.stroke();
        ctx.beginPath(); ctx.arc(x, y - 16, 2, 0, Math.PI * 2); ctx.fill();
        ctx.textAlign = "right"; ctx.fillText(s.label, x - 4, y - 14);
      } else {
        const x = b.x + b.w / 2 - 10 - 12 * outCount++, y = b.y + b.h;
        ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x, y + 16); ctx.stroke();
        ctx.beginPath(); ctx.arc(x, y + 16, 2, 0, Math.PI * 2); ctx.fill();
        ctx.textAlign = "left"; ctx.fillText(s.label, x + 4, y + 14);
      }
    }
  }

  _drawMarks(list, width) {
    const ctx = this.ctx;
    const k = this.cam.k;
    const pad = Math.max(2, 3 / k);
    for (const i of list) {
      const mark = this.markedNodes.get(i);
      const sel = this.selected.has(i);
      if (!mark && !sel) continue;
      ctx.beginPath();
      ctx.rect(
        this.nx0[i] - pad,
        this.ny0[i] - pad,
        this.nx1[i] - this.nx0[i] + 2 * pad,
        this.ny1[i] - this.ny0[i] + 2 * pad,
      );
      ctx.lineWidth = sel ? Math.max(width, 2.5 / k) : Math.max(width, 2 / k);
      ctx.setLineDash(mark === "dd" && !sel ? [6 / Math.max(k, 0.3), 4 / Math.max(k, 0.3)] : []);
      ctx.strokeStyle = sel ? SELECT : mark === "dd" ? "#c62828" : "#eab308";
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }

  // -- minimap ---------------------------------------------------------------------------------
  _buildMinimap() {
    const mm = this.minimap;
    if (!mm) return;
    const dpr = window.devicePixelRatio || 1;
    const r = mm.getBoundingClientRect();
    mm.width = Math.max(1, Math.round(r.width * dpr));
    mm.height = Math.max(1, Math.round(r.height * dpr));
    const d = this.drawing;
    const s = Math.min(mm.width / (d.width + 40), mm.height / (d.height + 40));
    this.mm = { s, ox: (mm.width - d.width * s) / 2, oy: (mm.height - d.height * s) / 2, dpr };
    const base = document.createElement("canvas");
    base.width = mm.width; base.height = mm.height;
    const c = base.getContext("2d");
    const byColor = new Map();
    d.nodes.forEach((b, i) => {
      const color = this._color(i);
      if (!byColor.has(color)) byColor.set(color, []);
      byColor.get(color).push(i);
    });
    for (const [color, members] of byColor) {
      c.fillStyle = color;
      c.beginPath();
      for (const i of members) {
        c.rect(this.mm.ox + this.nx0[i] * s, this.mm.oy + this.ny0[i] * s,
          Math.max(1, (this.nx1[i] - this.nx0[i]) * s), Math.max(1, (this.ny1[i] - this.ny0[i]) * s));
      }
      c.fill();
    }
    this.mmBase = base;
  }

  _drawMinimapView() {
    const mm = this.minimap;
    if (!mm || !this.mmBase) return;
    const c = mm.getContext("2d");
    c.clearRect(0, 0, mm.width, mm.height);
    c.drawImage(this.mmBase, 0, 0);
    const { s, ox, oy } = this.mm;
    const k = this.cam.k;
    c.strokeStyle = SELECT;
    c.lineWidth = 1.5;
    c.strokeRect(ox + this.cam.x * s, oy + this.cam.y * s, Math.max(3, this.W / k * s), Math.max(3, this.H / k * s));
  }

  _minimapTo(e) {
    const r = this.minimap.getBoundingClientRect();
    const { s, ox, oy, dpr } = this.mm;
    const wx = ((e.clientX - r.left) * dpr - ox) / s, wy = ((e.clientY - r.top) * dpr - oy) / s;
    const k = this.cam.k;
    this.cam.x = wx - this.W / k / 2;
    this.cam.y = wy - this.H / k / 2;
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
      const d = this._distance(this.drawing.edges[e].pts, wx, wy);
      if (d < bestD) { bestD = d; best = e; }
    }
    if (best !== null) return { type: "edge", index: best, tensor: this.drawing.edges[best].t };
    return null;
  }

  _distance(p, x, y) {
    let best = Infinity;
    for (let j = 2; j < p.length; j += 2) {
      const ax = p[j - 2], ay = p[j - 1], bx = p[j], by = p[j + 1];
      const steps = ax === bx ? 1 : 8;
      let px = ax, py = ay;
      for (let s = 1; s <= steps; s++) {
        const t = s / steps;
        // the same cubic as _edgePath: vertical tangents at both ends
        const u = 1 - t;
        const my = (by - ay) / 2;
        const qx = steps === 1 ? bx : u * u * u * ax + 3 * u * u * t * ax + 3 * u * t * t * bx + t * t * t * bx;
        const qy =
          steps === 1 ? by : u * u * u * ay + 3 * u * u * t * (ay + my) + 3 * u * t * t * (by - my) + t * t * t * by;
        best = Math.min(best, segDistance(x, y, px, py, qx, qy));
        px = qx; py = qy;
      }
    }
    return best;
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
        this._minimapTo(e);
      });
      this.minimap.addEventListener("pointermove", (e) => { if (mmDrag) this._minimapTo(e); });
      this.minimap.addEventListener("pointerup", () => { mmDrag = false; });
    }
  }
}

// A light version of a "#rrggbb" colour (box bodies in a colour mode; the title keeps the full colour).
function tint(color) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!m) return "#fff";
  return `rgb(${m.slice(1).map((x) => Math.round(255 - (255 - parseInt(x, 16)) * 0.28)).join(",")})`;
}

// Dark or white text, whichever reads better on a "#rrggbb" background.
function inkOn(color) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!m) return "#fff";
  const [r, g, b] = m.slice(1).map((x) => parseInt(x, 16));
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#111827" : "#fff";
}

function segDistance(x, y, ax, ay, bx, by) {
  const dx = bx - ax, dy = by - ay;
  const len = dx * dx + dy * dy;
  let t = len ? ((x - ax) * dx + (y - ay) * dy) / len : 0;
  t = Math.max(0, Math.min(1, t));
  const px = ax + t * dx - x, py = ay + t * dy - y;
  return Math.sqrt(px * px + py * py);
}
