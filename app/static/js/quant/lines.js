// Line charts of the error analysis, drawn as SVG without a chart library: panels stacked over one
// x axis (the graph's depth, or the number of int16 points of the precision curve), each with its
// own y scale, series and threshold lines. Every x position is one point of the data: a hit band
// over all panels names it on hover and selects it on click, so a reader goes from the picture to
// the graph. Infinity (an exact match: the report writes null SQNR with cosine 1) is drawn on the
// panel's top edge; null leaves a gap.
import { fmt } from "../core/dom.js";
import { svg, r2 } from "../core/svg.js";
import { ticks } from "./charts.js";

export const GRADE_COLORS = { good: "#15803d", marginal: "#d97706", poor: "#c62828" };

function shown(v) {
  return v === Infinity ? "\u221e (exact)" : v === null || v === undefined ? "n/a" : fmt(Number(v.toFixed(4)));
}

// y range of a panel: its finite values and threshold lines, padded; given bounds win
function yRange(panel) {
  const vals = panel.series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  vals.push(...(panel.lines || []).map((l) => l.value));
  let lo = panel.lo ?? Math.min(...vals), hi = panel.hi ?? Math.max(...vals);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) { lo = 0; hi = 1; }
  if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
  const pad = (hi - lo) * 0.06;
  return [panel.lo ?? lo - pad, panel.hi ?? hi + pad];
}

/**
 * points: [{key, label, x}]; panels: [{label, unit, lo?, hi?, series: [{key, label, color, values,
 * marks?, markColors?}], lines?: [{value, label, color}]}]; xTicks: [{x, label}]; onPick(index);
 * selected: index or -1; notes: [{index, label}] (a labelled vertical marker, e.g. the knee).
 */
export function lineChart({ points, panels, xTicks = [], xLabel = "", onPick = null, selected = -1, notes = [],
  width = 760, panelHeight = 110, cls = "" }) {
  const L = 52, R = 14, T = 14, gap = 24, B = notes.length ? 44 : 32;
  const PW = width - L - R;
  const H = T + panels.length * (panelHeight + gap) - gap + B;
  const xs = points.map((p) => p.x);
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (!(x1 > x0)) { x0 -= 1; x1 += 1; }
  const sx = (v) => L + ((v - x0) / (x1 - x0)) * PW;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${H}`,
    width,
    height: H,
    class: `qchart line-chart ${cls}`,
    role: "img",
    "data-points": points.length,
    "data-left": L,
    "data-plot-width": PW,
    "data-x0": x0,
    "data-x1": x1,
  });
  panels.forEach((panel, pi) => {
    const top = T + pi * (panelHeight + gap);
    const [lo, hi] = yRange(panel);
    const sy = (v) => top + panelHeight - ((Math.max(lo, Math.min(hi, v)) - lo) / (hi - lo)) * panelHeight;
    const g = svg("g", {
      class: "panel",
      "data-panel": panel.key || pi,
      "data-y0": lo,
      "data-y1": hi,
      "data-top": top,
      "data-height": panelHeight,
    });
    for (const t of ticks(lo, hi, 4)) {
      g.append(svg("line", { x1: L, x2: L + PW, y1: r2(sy(t)), y2: r2(sy(t)), stroke: "#eef0f3" }),
        svg("text", { x: L - 4, y: r2(sy(t) + 3), "font-size": 9, fill: "#667085", "text-anchor": "end" }, fmt(t)));
    }
    g.append(svg("line", { x1: L, x2: L + PW, y1: top + panelHeight, y2: top + panelHeight, stroke: "#9aa3b2" }),
      svg("text", { x: L, y: top - 4, "font-size": 10, fill: "#344054", "font-weight": 600 }, panel.label));
    (panel.lines || []).forEach((line, k) => { // labels alternate right and left, so close lines stay readable
      g.append(
        svg("line", {
          class: "threshold",
          x1: L,
          x2: L + PW,
          y1: r2(sy(line.value)),
          y2: r2(sy(line.value)),
          stroke: line.color || "#98a2b3",
          "stroke-dasharray": "5 3",
          "data-value": line.value,
        }),
        svg(
          "text",
          {
            x: k % 2 ? L + 4 : L + PW - 2,
            y: r2(sy(line.value) + (k % 2 ? 10 : -2)),
            "font-size": 9,
            fill: line.color || "#667085",
            "text-anchor": k % 2 ? "start" : "end",
          },
          line.label,
        ),
      );
    });
    // series: a polyline broken at nulls, then one mark per value
    let lx = L + 14 + panel.label.length * 6.5;
    for (const s of panel.series) {
      let d = "", pen = false;
      s.values.forEach((v, i) => {
        if (v === null || v === undefined || Number.isNaN(v)) { pen = false; return; }
        d += `${pen ? "L" : "M"}${r2(sx(points[i].x))} ${r2(sy(v))} `;
        pen = true;
      });
      g.append(
        svg("path", {
          d: d.trim(),
          fill: "none",
          stroke: s.color,
          "stroke-width": 1.4,
          class: "series",
          "data-series": s.key,
        }),
      );
      if (s.marks) {
        s.values.forEach((v, i) => {
          if (v === null || v === undefined || Number.isNaN(v)) return;
          g.append(
            svg("circle", {
              class: "mark",
              cx: r2(sx(points[i].x)),
              cy: r2(sy(v)),
              r: s.markRadius || 2.2,
              fill: s.markColors?.[i] || s.color,
              "data-series": s.key,
              "data-key": points[i].key,
              "data-index": i,
              "data-value": v,
            }),
          );
        });
      }
      if (panel.series.length > 1) {
        g.append(svg("line", { x1: lx, x2: lx + 14, y1: top - 7, y2: top - 7, stroke: s.color, "stroke-width": 2 }),
          svg("text", { x: lx + 17, y: top - 4, "font-size": 9, fill: "#344054" }, s.label));
        lx += 26 + s.label.length * 5;
      }
    }
    root.append(g);
  });
  const bottom = T + panels.length * (panelHeight + gap) - gap;
  let last = -Infinity;
  for (const t of xTicks) {
    if (sx(t.x) - last < 8 + 5 * t.label.length) continue; // a crowded label is left out
    last = sx(t.x);
    root.append(
      svg("line", { x1: r2(sx(t.x)), x2: r2(sx(t.x)), y1: bottom, y2: bottom + 3, stroke: "#9aa3b2" }),
      svg(
        "text",
        { x: r2(sx(t.x)), y: bottom + 13, "font-size": 9, fill: "#667085", "text-anchor": "middle" },
        t.label,
      ),
    );
  }
  if (xLabel)
    root.append(svg("text", { x: L + PW, y: H - 3, "font-size": 9, fill: "#667085", "text-anchor": "end" }, xLabel));
  for (const n of notes) {
    const x = r2(sx(points[n.index].x));
    root.append(
      svg("line", {
        class: "note",
        x1: x,
        x2: x,
        y1: T,
        y2: bottom,
        stroke: n.color || "#344054",
        "stroke-dasharray": "2 2",
        "data-index": n.index,
      }),
      svg(
        "text",
        {
          x: x + 3,
          y: bottom + 26,
          "font-size": 9,
          fill: n.color || "#344054",
          "font-weight": 600,
          "text-anchor": x > L + PW * 0.8 ? "end" : "start",
        },
        n.label,
      ),
    );
  }
  // hit bands: one per point, over every panel, named on hover
  const bands = svg("g", { class: "bands" });
  points.forEach((p, i) => {
    const a = i ? (sx(points[i - 1].x) + sx(p.x)) / 2 : L - 2,
      b = i < points.length - 1 ? (sx(p.x) + sx(points[i + 1].x)) / 2 : L + PW + 2;
    const values = panels.flatMap((panel) =>
      panel.series.map(
        (s) => `${s.label}: ${shown(s.values[i])}${panel.unit && s.values[i] !== null ? ` ${panel.unit}` : ""}`,
      ),
    );
    const band = svg(
      "rect",
      {
        class: `point${i === selected ? " selected" : ""}`,
        x: r2(a),
        y: T,
        width: r2(Math.max(0.5, b - a)),
        height: bottom - T,
        "data-index": i,
        "data-key": p.key,
      },
      svg("title", {}, [p.label, ...values].join("\n")),
    );
    if (onPick) band.addEventListener("click", () => onPick(i));
    bands.append(band);
  });
  root.append(bands);
  return root;
}
