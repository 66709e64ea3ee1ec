// SVG charts of the quantization analysis, drawn here without any chart library: an activation
// histogram with each algorithm's clip range as vertical lines, small grouped bar charts (SQNR per
// algorithm, end-to-end SQNR and cosine per configuration), per-channel weight ranges, the range
// glyph of the layer table and the heat-map legend.
//
// Every chart that places values on an axis keeps its scale on the root element
// (data-x0, data-x1, data-left, data-plot-width), and each clip line carries its value
// (data-value), so what is drawn can be checked against the report.
import { fmt } from "../core/dom.js";
import { svg, r2 } from "../core/svg.js";
import { vocabulary } from "../core/vocabulary.js";

export const ALGORITHM_LABELS = { minmax: "Min-Max", kl: "KL entropy", percentile: "Percentile", mse: "MSE" };
// Min-Max red dashed and KL green, as users know the picture; percentile and MSE in their own colours.
export const ALGORITHM_STYLES = {
  minmax: { color: "#d92d20", dash: "6 4" },
  kl: { color: "#16a34a", dash: "" },
  percentile: { color: "#7c3aed", dash: "2 3" },
  mse: { color: "#ea8c00", dash: "8 3 2 3" },
};
export const CONFIG_LABELS = {
  "uint8/minmax": "uint8 Min-Max",
  "uint8/kl": "uint8 KL",
  "int16/minmax": "int16",
  hybrid: "hybrid",
};
export const CONFIG_COLORS = {
  "uint8/minmax": "#d92d20",
  "uint8/kl": "#16a34a",
  "int16/minmax": "#2f5fb3",
  hybrid: "#7c3aed",
};

function text(x, y, content, attrs = {}, ...children) {
  return svg("text", { x: r2(x), y: r2(y), "font-size": 10, fill: "#667085", ...attrs }, content, ...children);
}

function title(content) { return svg("title", {}, content); }

// Round tick values over [lo, hi]: about n of them, at 1/2/5 x 10^k steps.
export function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => raw <= s) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

// Merge neighbouring bins (all of one width, as the analysis keeps them) down to at most maxBins.
export function mergeBins(edges, counts, maxBins) {
  const n = counts.length;
  if (n <= maxBins) return { edges, counts };
  const g = Math.ceil(n / maxBins);
  const e = [], c = [];
  for (let i = 0; i < n; i += g) {
    e.push(edges[i]);
    let sum = 0;
    for (let j = i; j < Math.min(n, i + g); j++) sum += counts[j];
    c.push(sum);
  }
  e.push(edges[n]);
  return { edges: e, counts: c };
}

// The activation histogram with clip ranges. hist: {edges, counts}; ranges: {algorithm: [lo, hi]}.
export function clipHistogram(hist, ranges, { log = true, width = 336, height = 170, label = "" } = {}) {
  const W = width, H = height, L = 8, R = 8, T = 8, B = 34;
  const PW = W - L - R, PH = H - T - B;
  const algos = vocabulary().quant.algorithms.filter((a) => ranges && ranges[a]);
  let x0 = hist.edges.length ? hist.edges[0] : 0;
  let x1 = hist.edges.length ? hist.edges[hist.edges.length - 1] : 1;
  for (const a of algos) { x0 = Math.min(x0, ranges[a][0]); x1 = Math.max(x1, ranges[a][1]); }
  if (!(x1 > x0)) { x0 -= 0.5; x1 += 0.5; }
  const pad = (x1 - x0) * 0.02;
  x0 -= pad; x1 += pad;
  const sx = (v) => L + ((v - x0) / (x1 - x0)) * PW;
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    width: W,
    height: H,
    class: "qchart clip-histogram",
    role: "img",
    "aria-label": `histogram${label ? ` of ${label}` : ""} with clip ranges`,
    "data-x0": x0,
    "data-x1": x1,
    "data-left": L,
    "data-plot-width": PW,
    "data-width": W,
    "data-log": log ? "1" : "0",
  });
  const { edges, counts } = mergeBins(hist.edges, hist.counts, Math.floor(PW));
  const max = Math.max(1, ...counts);
  const yOf = (c) => (log ? Math.log10(1 + c) / Math.log10(1 + max) : c / max) * PH;
  const bars = svg("g", { class: "bars", fill: "#94a3b8" });
  for (let i = 0; i < counts.length; i++) {
    if (!counts[i]) continue;
    const a = sx(edges[i]), b = sx(edges[i + 1]);
    const hgt = Math.max(0.8, yOf(counts[i]));
    bars.append(svg("rect", { x: r2(a), y: r2(T + PH - hgt), width: r2(Math.max(0.6, b - a)), height: r2(hgt) },
      title(`[${fmt(edges[i])}, ${fmt(edges[i + 1])}): ${counts[i]}`)));
  }
  root.append(bars);
  // zero and axis
  root.append(svg("line", { x1: L, x2: L + PW, y1: T + PH, y2: T + PH, stroke: "#9aa3b2" }));
  if (x0 < 0 && x1 > 0)
    root.append(svg("line", { x1: r2(sx(0)), x2: r2(sx(0)), y1: T, y2: T + PH, stroke: "#cbd2dc", "stroke-width": 1 }));
  for (const t of ticks(x0, x1, 5)) {
    root.append(svg("line", { x1: r2(sx(t)), x2: r2(sx(t)), y1: T + PH, y2: T + PH + 3, stroke: "#9aa3b2" }),
      text(sx(t), T + PH + 13, fmt(t), { "text-anchor": "middle" }));
  }
  // clip lines, drawn after the bars so they stay on top; a thin halo keeps them readable
  const lines = svg("g", { class: "clip-lines" });
  for (const a of algos) {
    const st = ALGORITHM_STYLES[a];
    ["lo", "hi"].forEach((bound, k) => {
      const v = ranges[a][k];
      const x = r2(sx(v));
      lines.append(
        svg(
          "line",
          {
            class: `clip clip-${a}`,
            x1: x,
            x2: x,
            y1: T,
            y2: T + PH,
            stroke: st.color,
            "stroke-width": 1.6,
            "stroke-dasharray": st.dash || null,
            "data-algorithm": a,
            "data-bound": bound,
            "data-value": v,
          },
          title(`${ALGORITHM_LABELS[a]} ${bound === "lo" ? "min" : "max"}: ${fmt(v)}`),
        ),
      );
    });
  }
  root.append(lines);
  // legend
  let lx = L;
  for (const a of algos) {
    const st = ALGORITHM_STYLES[a];
    root.append(
      svg("line", {
        x1: lx,
        x2: lx + 16,
        y1: H - 6,
        y2: H - 6,
        stroke: st.color,
        "stroke-width": 1.6,
        "stroke-dasharray": st.dash || null,
      }),
      text(lx + 19, H - 3, ALGORITHM_LABELS[a], { fill: "#344054" }),
    );
    lx += 26 + ALGORITHM_LABELS[a].length * 5.4;
  }
  root.append(text(W - R, H - 3, log ? "log count" : "count", { "text-anchor": "end" }));
  return root;
}

// Horizontal grouped bars: rows of {label, values: [{key, value, color, text}]}, one scale for all.
export function groupedBars(
  rows,
  { width = 336, labelW = 78, unit = "dB", min = null, max = null, keyLabels = {}, cls = "" } = {},
) {
  const R = 44,
    barH = 9,
    gap = 2,
    rowGap = 7;
  const keys = [...new Set(rows.flatMap((r) => r.values.map((v) => v.key)))];
  const values = rows
    .flatMap((r) => r.values.map((v) => v.value))
    .filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  let lo = min ?? Math.min(0, ...values),
    hi = max ?? Math.max(1, ...values);
  if (!(hi > lo)) hi = lo + 1;
  const PW = width - labelW - R;
  const sx = (v) => labelW + ((Math.max(lo, Math.min(hi, v)) - lo) / (hi - lo)) * PW;
  const rowH = keys.length * (barH + gap) + rowGap;
  const legendH = keys.length > 1 ? 16 : 0;
  const H = rows.length * rowH + 16 + legendH;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${H}`,
    width,
    height: H,
    class: `qchart bars ${cls}`,
    role: "img",
    "data-x0": lo,
    "data-x1": hi,
    "data-left": labelW,
    "data-plot-width": PW,
  });
  rows.forEach((row, ri) => {
    const y0 = ri * rowH + 4;
    root.append(
      text(
        labelW - 6,
        y0 + (keys.length * (barH + gap)) / 2 + 3,
        row.label,
        { "text-anchor": "end", fill: "#344054" },
        row.title ? title(row.title) : null,
      ),
    );
    row.values.forEach((v) => {
      const k = keys.indexOf(v.key);
      const y = y0 + k * (barH + gap);
      const ok = v.value !== null && v.value !== undefined && Number.isFinite(v.value);
      const x = sx(Math.max(lo, 0 >= lo && 0 <= hi ? 0 : lo));
      const end = ok ? sx(v.value) : x;
      root.append(
        svg(
          "rect",
          {
            x: r2(Math.min(x, end)),
            y: r2(y),
            width: r2(Math.max(ok ? 1 : 0, Math.abs(end - x))),
            height: barH,
            fill: v.color,
            class: "bar",
            "data-key": v.key,
            "data-row": row.label,
            "data-value": ok ? v.value : "",
          },
          title(`${row.label} \u00b7 ${keyLabels[v.key] || v.key}: ${ok ? `${fmt(v.value)} ${unit}` : "n/a"}`),
        ),
      );
      root.append(
        text(Math.max(end, x) + 3, y + barH - 1, ok ? (v.text ?? fmt(Number(v.value.toFixed(2)))) : "n/a", {
          fill: "#344054",
          "font-size": 9,
        }),
      );
    });
  });
  const axisY = rows.length * rowH + 4;
  root.append(svg("line", { x1: labelW, x2: labelW + PW, y1: axisY, y2: axisY, stroke: "#9aa3b2" }));
  for (const t of ticks(lo, hi, 4)) {
    root.append(text(sx(t), axisY + 11, `${fmt(t)}`, { "text-anchor": "middle", "font-size": 9 }));
  }
  root.append(text(labelW + PW + 4, axisY + 11, unit, { "font-size": 9 }));
  if (legendH) {
    let lx = labelW;
    for (const key of keys) {
      const color = rows.flatMap((r) => r.values).find((v) => v.key === key).color;
      root.append(
        svg("rect", { x: lx, y: H - 11, width: 10, height: 8, fill: color }),
        text(lx + 13, H - 4, keyLabels[key] || key, { fill: "#344054", "font-size": 9 }),
      );
      lx += 22 + (keyLabels[key] || key).length * 5;
    }
  }
  return root;
}

// Per-channel ranges of a weight: one vertical bar from min to max per channel; channels whose
// spread is far beyond the typical one are drawn in red (the outliers that ruin a per-tensor scale).
export function channelRanges(mins, maxs, { width = 336, height = 150, outlierFactor = 3 } = {}) {
  const W = width, H = height, L = 40, R = 6, T = 8, B = 22;
  const PW = W - L - R, PH = H - T - B;
  const n = mins.length;
  mins = mins.map((v) => v ?? 0); maxs = maxs.map((v) => v ?? 0);
  const lo = Math.min(...mins, 0), hi = Math.max(...maxs, 0);
  const sy = (v) => T + PH - ((v - lo) / ((hi - lo) || 1)) * PH;
  const spans = mins.map((m, i) => maxs[i] - m);
  const sorted = [...spans].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] || 0;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "qchart channel-ranges", role: "img",
    "aria-label": `ranges of ${n} channels`, "data-channels": n });
  for (const t of ticks(lo, hi, 4)) {
    root.append(
      svg("line", { x1: L, x2: L + PW, y1: r2(sy(t)), y2: r2(sy(t)), stroke: t === 0 ? "#9aa3b2" : "#eef0f3" }),
      text(L - 4, sy(t) + 3, fmt(t), { "text-anchor": "end", "font-size": 9 }),
    );
  }
  const bw = PW / Math.max(1, n);
  let outliers = 0;
  for (let i = 0; i < n; i++) {
    const out = median > 0 && spans[i] > outlierFactor * median;
    if (out) outliers++;
    root.append(svg("rect", { x: r2(L + i * bw + (bw > 3 ? 0.5 : 0)), width: r2(Math.max(0.7, bw - (bw > 3 ? 1 : 0))),
      y: r2(sy(maxs[i])), height: r2(Math.max(0.8, sy(mins[i]) - sy(maxs[i]))), fill: out ? "#d92d20" : "#2f5fb3",
      class: out ? "channel outlier" : "channel" }, title(`channel ${i}: [${fmt(mins[i])}, ${fmt(maxs[i])}]`)));
  }
  root.append(
    text(L, H - 6, `channel 0\u2013${n - 1}`, { "font-size": 9 }),
    text(
      W - R,
      H - 6,
      outliers ? `${outliers} outlier channel(s) (> ${outlierFactor}\u00d7 median spread)` : "no outlier channels",
      { "text-anchor": "end", "font-size": 9, fill: outliers ? "#b42318" : "#667085" },
    ),
  );
  root.dataset.outliers = String(outliers);
  return root;
}

// A plain histogram (weights): bars over edges, min and max at the ends.
export function plainHistogram(counts, edges, { width = 336, height = 90, log = true } = {}) {
  return clipHistogram({ counts, edges }, {}, { width, height, log });
}

// The layer table's range glyph: each algorithm's [lo, hi] as a short bar on a shared axis.
export function rangeGlyph(ranges, { width = 120 } = {}) {
  const algos = vocabulary().quant.algorithms.filter((a) => ranges && ranges[a]);
  const H = algos.length * 4 + 2;
  let lo = Infinity, hi = -Infinity;
  for (const a of algos) { lo = Math.min(lo, ranges[a][0]); hi = Math.max(hi, ranges[a][1]); }
  const root = svg("svg", { viewBox: `0 0 ${width} ${H}`, width, height: H, class: "range-glyph" });
  if (!algos.length || !(hi >= lo)) return root;
  const span = hi - lo || 1;
  const sx = (v) => 1 + ((v - lo) / span) * (width - 2);
  algos.forEach((a, k) => {
    const [p, q] = ranges[a];
    root.append(
      svg("rect", {
        x: r2(sx(p)),
        y: 1 + k * 4,
        width: r2(Math.max(1, sx(q) - sx(p))),
        height: 3,
        fill: ALGORITHM_STYLES[a].color,
      }),
    );
  });
  if (lo < 0 && hi > 0)
    root.append(svg("line", { x1: r2(sx(0)), x2: r2(sx(0)), y1: 0, y2: H, stroke: "#1d2330", "stroke-width": 0.8 }));
  root.append(
    title(algos.map((a) => `${ALGORITHM_LABELS[a]}: [${fmt(ranges[a][0])}, ${fmt(ranges[a][1])}]`).join("\n")),
  );
  return root;
}

// The SQNR colour scale of the heat-map: red (bad) through yellow to green (good).
export const HEAT_STOPS = [
  [10, [178, 24, 43]],
  [20, [239, 101, 72]],
  [30, [253, 219, 99]],
  [40, [145, 207, 96]],
  [50, [26, 152, 80]],
];
export const HEAT_NONE = "#d0d5dd";

export function heatColor(db, stops = HEAT_STOPS) {
  if (db === null || db === undefined || Number.isNaN(db)) return HEAT_NONE;
  const s = stops;
  if (db <= s[0][0]) return hex(s[0][1]);
  if (db >= s[s.length - 1][0]) return hex(s[s.length - 1][1]);
  for (let i = 1; i < s.length; i++) {
    if (db <= s[i][0]) {
      const t = (db - s[i - 1][0]) / (s[i][0] - s[i - 1][0]);
      return hex(s[i - 1][1].map((c, k) => c + t * (s[i][1][k] - c)));
    }
  }
  return hex(s[s.length - 1][1]);
}

function hex(rgb) { return `#${rgb.map((c) => Math.round(c).toString(16).padStart(2, "0")).join("")}`; }

// The stops sit at even steps (each segment is linear, as heatColor blends), so a scale of uneven
// stops (cosine 0.9, 0.95, 0.99, 0.999) stays readable.
export function heatLegend(label, { width = 240, stops = HEAT_STOPS, unit = "dB" } = {}) {
  const s = stops;
  const root = svg("svg", {
    viewBox: `0 0 ${width} 40`,
    width,
    height: 40,
    class: "qchart heat-legend",
    role: "img",
    "aria-label": `colour scale: ${label}`,
  });
  const id = `heat-grad-${Math.random().toString(36).slice(2, 8)}`;
  const at = (i) => i / (s.length - 1);
  root.append(
    svg(
      "defs",
      {},
      svg(
        "linearGradient",
        { id },
        s.map(([, c], i) => svg("stop", { offset: `${at(i) * 100}%`, "stop-color": hex(c) })),
      ),
    ),
  );
  const L = 8, PW = width - 16 - 58;
  root.append(text(L, 10, label, { fill: "#344054", "font-size": 10 }));
  root.append(svg("rect", { x: L, y: 14, width: PW, height: 10, fill: `url(#${id})`, rx: 2 }));
  s.forEach(([v], i) => root.append(text(L + at(i) * PW, 35, `${v}`, { "text-anchor": "middle", "font-size": 9 })));
  root.append(text(L + PW + 12, 35, unit, { "font-size": 9 }));
  root.append(
    svg(
      "rect",
      { x: L + PW + 26, y: 14, width: 12, height: 10, fill: HEAT_NONE, rx: 2 },
      title("not quantized / no data"),
    ),
    text(L + PW + 40, 23, "n/a", { "font-size": 9 }),
  );
  return root;
}
