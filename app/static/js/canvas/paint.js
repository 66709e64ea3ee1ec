// Drawing a frame of the graph view: edges with their arrows and labels, boxes at three levels of detail,
// broadcast stubs and selection marks. Box offsets come from the layout's metrics (view.box).
import { EDGE_COLOR, MARK_EDGE, SELECT, inkOn, tint } from "./colors.js";

export function edgePath(ctx, p, smooth) {
  ctx.moveTo(p[0], p[1]);
  for (let j = 2; j < p.length; j += 2) {
    const ax = p[j - 2], ay = p[j - 1], bx = p[j], by = p[j + 1];
    if (!smooth || ax === bx) { ctx.lineTo(bx, by); continue; }
    const my = (by - ay) / 2;
    ctx.bezierCurveTo(ax, ay + my, bx, by - my, bx, by);
  }
}

export function drawEdges(view, list, level) {
  const ctx = view.ctx;
  const k = view.cam.k;
  const edges = view.drawing.edges;
  const smooth = level > 0;
  const groups = [[EDGE_COLOR, 1, []], [MARK_EDGE, 2, []], [SELECT, 2.5, []]];
  for (const e of list) {
    const t = edges[e].t;
    groups[t === view.selectedTensor ? 2 : view.markedTensors.has(t) ? 1 : 0][2].push(e);
  }
  for (const [color, width, members] of groups) {
    if (!members.length) continue;
    ctx.strokeStyle = color;
    ctx.lineWidth = level === 2 ? width : width / k * 0.8;
    ctx.beginPath();
    for (const e of members) edgePath(ctx, edges[e].pts, smooth);
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
      if (!view.labelled[e] || !edges[e].label) continue;
      const p = edges[e].pts;
      ctx.fillText(edges[e].label, p[0] + 4, p[1] + Math.min(14, (p[3] - p[1]) / 2) + (view.labelled[e] - 1) * 11);
    }
  }
}

export function boxText(view, b) {
  const box = view.box;
  // Titles and rows clipped to the box once (the font is fixed), not on every frame.
  if (b._text) return b._text;
  const ctx = view.ctx;
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
  const title = fit(b.title, b.w - 2 * box.pad_x);
  ctx.font = "11px system-ui, sans-serif";
  const rows = b.rows.map(([key, value]) => {
    const kw = key ? ctx.measureText(key + "  ").width : 0;
    return [key, fit(value, b.w - 2 * box.pad_x - kw), kw];
  });
  b._text = { title, rows };
  return b._text;
}

export function drawNodes(view, list, level) {
  const box = view.box;
  const ctx = view.ctx;
  const nodes = view.drawing.nodes;
  const k = view.cam.k;
  if (level === 0) {
    const byColor = new Map();
    for (const i of list) {
      const c = view.colorOf(i);
      if (!byColor.has(c)) byColor.set(c, []);
      byColor.get(c).push(i);
    }
    const min = 1.5 / k; // at least a pixel and a half, so tiny graphs stay visible
    for (const [color, members] of byColor) {
      ctx.fillStyle = color;
      ctx.beginPath();
      for (const i of members) {
        ctx.rect(
          view.nx0[i],
          view.ny0[i],
          Math.max(min, view.nx1[i] - view.nx0[i]),
          Math.max(min, view.ny1[i] - view.ny0[i]),
        );
      }
      ctx.fill();
    }
    drawMarks(view, list, 2 / k);
    return;
  }
  for (const i of list) {
    const b = nodes[i];
    const x = view.nx0[i], y = view.ny0[i], w = b.w, h = b.h;
    const color = view.colorOf(i);
    const io = b.kind !== "op";
    const r = io ? Math.min(10, h / 2) : 4;
    ctx.beginPath();
    ctx.roundRect(x, y, w, h, r);
    ctx.fillStyle = io ? "#f3f4f6" : view.colorOverride ? tint(color) : "#fff";
    ctx.fill();
    ctx.lineWidth = 1;
    ctx.strokeStyle = io ? "#6b7280" : "#b5bcc8";
    ctx.stroke();
    if (!io) {
      ctx.beginPath();
      ctx.roundRect(x, y, w, box.title_h, b.rows.length ? [4, 4, 0, 0] : 4);
      ctx.fillStyle = color;
      ctx.fill();
    }
    const text = boxText(view, b);
    ctx.textBaseline = "middle";
    ctx.textAlign = "center";
    ctx.font = "600 11px system-ui, sans-serif";
    ctx.fillStyle = io ? "#111827" : view.colorOverride ? inkOn(color) : "#fff";
    ctx.fillText(text.title, b.x, y + box.title_h / 2 + 0.5);
    if (b.bodies) {
      ctx.textAlign = "right";
      ctx.fillText("\u25b8", x + w - 4, y + box.title_h / 2);
    }
    if (level === 2 && text.rows.length) {
      ctx.font = "11px system-ui, sans-serif";
      let ry = y + box.title_h + box.rows_pad / 2 + box.row_h / 2;
      for (const [key, value, kw] of text.rows) {
        if (io) {
          ctx.textAlign = "center";
          ctx.fillStyle = "#4b5563";
          ctx.fillText(value, b.x, ry);
        } else {
          ctx.textAlign = "left";
          if (key) { ctx.fillStyle = "#6b7280"; ctx.fillText(key, x + box.pad_x, ry); }
          ctx.fillStyle = "#111827";
          ctx.fillText(value, x + box.pad_x + kw, ry);
        }
        ry += box.row_h;
      }
    }
    const stubs = view.stubsOf.get(i);
    if (stubs && level === 2) drawStubs(view, b, stubs);
  }
  drawMarks(view, list, 2);
}

export function drawStubs(view, b, stubs) {
  const ctx = view.ctx;
  ctx.font = "9px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  let inCount = 0, outCount = 0;
  for (const s of stubs) {
    const marked = s.t === view.selectedTensor ? SELECT : view.markedTensors.has(s.t) ? MARK_EDGE : "#9aa3b2";
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

export function drawMarks(view, list, width) {
  const ctx = view.ctx;
  const k = view.cam.k;
  const pad = Math.max(2, 3 / k);
  for (const i of list) {
    const mark = view.markedNodes.get(i);
    const sel = view.selected.has(i);
    if (!mark && !sel) continue;
    ctx.beginPath();
    ctx.rect(
      view.nx0[i] - pad,
      view.ny0[i] - pad,
      view.nx1[i] - view.nx0[i] + 2 * pad,
      view.ny1[i] - view.ny0[i] + 2 * pad,
    );
    ctx.lineWidth = sel ? Math.max(width, 2.5 / k) : Math.max(width, 2 / k);
    ctx.setLineDash(mark === "dd" && !sel ? [6 / Math.max(k, 0.3), 4 / Math.max(k, 0.3)] : []);
    ctx.strokeStyle = sel ? SELECT : mark === "dd" ? "#c62828" : "#eab308";
    ctx.stroke();
  }
  ctx.setLineDash([]);
}
