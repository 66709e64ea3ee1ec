// The dock's "Error by depth" tab: the accumulated and local error along the graph's depth, with the
// point where the accumulated cosine falls most.
import { h } from "../core/dom.js";
import { ticks } from "./charts.js";
import { errorConfig, errorDb } from "./heatmap.js";
import { GRADE_COLORS, lineChart } from "./lines.js";
import { short, thresholdsOf } from "./verdict.js";

export function renderDepth(ui, body) {
  const report = ui.result.report;
  const names = Object.keys(report.tensors); // the report keeps them in the graph's topological order
  const acc = report.accumulated || {}, local = report.local || {};
  const limits = thresholdsOf(report);
  const cosines = names.map((n) => acc[n]?.cosine ?? null);
  // the collapse: the largest fall of the accumulated cosine from a point's inputs (the worst of
  // the points it is computed from, 1 for none) to the point; neighbours in the topological order
  // may sit on different branches, so the fall is measured along the graph's edges
  const points = new Set(names);
  let fall = null;
  cosines.forEach((c, i) => {
    if (c === null) return;
    const from = Math.min(
      1,
      ...[...feedingPoints(ui, names[i], points)]
        .map((t) => acc[t]?.cosine)
        .filter((v) => v !== null && v !== undefined),
    );
    if (!fall || from - c > fall.by) fall = { i, by: from - c, from, to: c };
  });
  const marginal = cosines.findIndex((c) => c !== null && c < limits.marginal_cosine);
  const link = (i) =>
    h("button", { type: "button", class: "link mono", onclick: () => ui.pickPoint(names[i]) }, names[i]);
  const facts = h(
    "p",
    { class: "depth-facts", id: "q-depth-facts" },
    `${names.length} quantization points in graph order, ${errorConfig(report)} against the float model. `,
    fall && fall.by > 0
      ? h(
          "span",
          {},
          "The accumulated cosine falls most at ",
          link(fall.i),
          ` (${fall.from.toFixed(4)} at its inputs \u2192 ${fall.to.toFixed(4)}). `,
        )
      : null,
    marginal >= 0 ? h("span", {}, `It is first below ${limits.marginal_cosine} at `, link(marginal), ".") : null,
  );
  const width = Math.max(640, (ui.body.clientWidth || 900) - 30);
  const chart = lineChart({
    points: names.map((n, i) => ({ key: n, label: `#${i + 1} ${n} (${report.tensors[n].op_type || ""})`, x: i })),
    width,
    panelHeight: 96,
    cls: "depth-chart",
    selected: ui.selectedPoint(),
    xLabel: "quantization points in graph order (depth) \u2192",
    xTicks: [...new Set([1, ...ticks(1, names.length, 8), names.length])].map((k) => ({ x: k - 1, label: `#${k}` })),
    notes:
      fall && fall.by > 0
        ? [{ index: fall.i, label: `cosine falls most (${short(names[fall.i], 24)})`, color: "#b42318" }]
        : [],
    onPick: (i) => ui.pickPoint(names[i]),
    panels: [
      {
        key: "cosine",
        label: "accumulated cosine",
        hi: 1,
        unit: "",
        series: [{ key: "acc-cosine", label: "accumulated cosine", color: "#2f5fb3", values: cosines, marks: true }],
        lines: [
          { value: limits.good_cosine, label: `good ${limits.good_cosine}`, color: GRADE_COLORS.good },
          {
            value: limits.marginal_cosine,
            label: `marginal ${limits.marginal_cosine}`,
            color: GRADE_COLORS.marginal,
          },
        ],
      },
      {
        key: "sqnr",
        label: "SQNR",
        unit: "dB",
        series: [
          {
            key: "acc-sqnr",
            label: "accumulated dB",
            color: "#2f5fb3",
            values: names.map((n) => errorDb(acc[n])),
            marks: true,
            markRadius: 1.6,
          },
          {
            key: "local-sqnr",
            label: "local dB (layer alone)",
            color: "#ea8c00",
            values: names.map((n) => errorDb(local[n])),
            marks: true,
            markRadius: 1.6,
          },
        ],
        lines: [{ value: limits.good_sqnr_db, label: `${limits.good_sqnr_db} dB`, color: GRADE_COLORS.good }],
      },
    ],
  });
  body.append(
    facts,
    h("div", { id: "q-depth-chart", class: "depth-box" }, chart),
    h("p", {
      class: "muted",
      text: "Hover a point to name it, click it to find it in the graph. Accumulated: the fully quantized model " +
        "against the float model at that point; local: that layer quantized alone, fed float inputs. Where the " +
        "accumulated line falls and the local one does not, the error was born earlier.",
    }),
  );
}

// the quantization points that `name` is computed from directly: the nearest ones upstream
export function feedingPoints(ui, name, points) {
  const model = ui.app.model;
  const found = new Set(), seen = new Set();
  const stack = [...(model.reads.get(model.tensor(name)?.producer) || [])];
  while (stack.length) {
    const t = stack.pop();
    if (seen.has(t)) continue;
    seen.add(t);
    if (points.has(t)) { found.add(t); continue; }
    const producer = model.tensor(t)?.producer;
    if (producer) stack.push(...(model.reads.get(producer) || []));
  }
  return found;
}
