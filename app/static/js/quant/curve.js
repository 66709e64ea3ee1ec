// The measured precision curve (output SQNR and cosine for k points in int16, most sensitive
// first), its knee, and why the error is there: which of weights and activations dominates, and
// the points the outputs feel most. A point of the curve clicked becomes "your choice".
import { h } from "../core/dom.js";
import { CONFIG_LABELS } from "./charts.js";
import { errorDb } from "./heatmap.js";
import { GRADE_COLORS, lineChart } from "./lines.js";
import { short, thresholdsOf } from "./verdict.js";
export function curveSection(ui, report) {
  const rec = report.recommendation;
  const curve = rec.curve;
  const limits = thresholdsOf(report);
  const worst = (outs, metric) => {
    const v = Object.values(outs || {})
      .map((o) => (metric === "cosine" ? o.cosine : errorDb(o)))
      .filter((x) => x !== null && x !== undefined);
    return v.length ? Math.min(...v) : null;
  };
  const mine = ui.curveIndexOfChoice();
  const knee = rec.knee ?? -1;
  const notes = [];
  if (knee >= 0) notes.push({ index: knee, label: "knee: recommended", color: "#7c3aed" });
  if (mine >= 0 && mine !== knee) notes.push({ index: mine, label: "your choice", color: "#0e7490" });
  const chart = lineChart({
    points: curve.map((c, i) => ({
      key: String(c.k),
      x: Math.log2(1 + c.k),
      label: `k = ${c.k} int16 point(s): ${c.grade || "not graded"}` +
        `${i === knee ? ", the knee (recommended)" : ""}${c.note ? `\n${c.note}` : ""}`,
    })),
    width: 560,
    panelHeight: 92,
    cls: "curve-chart",
    selected: mine,
    notes,
    xTicks: curve.map((c) => ({ x: Math.log2(1 + c.k), label: String(c.k) })),
    xLabel: "points in int16, most sensitive first (log scale)",
    onPick: (i) => ui.chooseCurvePoint(i),
    panels: [
      {
        key: "sqnr",
        label: "worst output SQNR",
        unit: "dB",
        series: [
          {
            key: "sqnr",
            label: "worst output dB",
            color: "#475467",
            values: curve.map((c) => worst(c.outputs, "sqnr")),
            marks: true,
            markRadius: 4.5,
            markColors: curve.map((c) => GRADE_COLORS[c.grade] || "#98a2b3"),
          },
        ],
        lines: [
          { value: limits.good_sqnr_db, label: `good \u2265 ${limits.good_sqnr_db} dB`, color: GRADE_COLORS.good },
        ],
      },
      {
        key: "cosine",
        label: "worst output cosine",
        unit: "",
        hi: 1,
        series: [
          {
            key: "cosine",
            label: "worst output cosine",
            color: "#2f5fb3",
            values: curve.map((c) => worst(c.outputs, "cosine")),
            marks: true,
            markRadius: 3,
            markColors: curve.map((c) => GRADE_COLORS[c.grade] || "#98a2b3"),
          },
        ],
        lines: [
          { value: limits.good_cosine, label: `good \u2265 ${limits.good_cosine}`, color: GRADE_COLORS.good },
          {
            value: limits.marginal_cosine,
            label: `marginal \u2265 ${limits.marginal_cosine}`,
            color: GRADE_COLORS.marginal,
          },
        ],
      },
    ],
  });
  const side = h("div", { class: "curve-facts" });
  const picked = curve[mine];
  side.append(h("p", { id: "q-curve-choice" }, mine >= 0
    ? `Your choice: k = ${picked.k} (${picked.int16.length} int16 point(s)), ${picked.grade || "not graded"}.`
    : "Your choice is not a point of the curve (edited by hand).",
  knee >= 0 ? ` The knee is k = ${curve[knee].k}.` : ""));
  for (const c of curve.filter((x) => x.note)) side.append(h("p", { class: "muted", text: `k = ${c.k}: ${c.note}` }));
  if (rec.curve_note)
    side.append(h("p", { class: "pill warn curve-note", id: "q-curve-note", text: rec.curve_note }));
  const src = report.error_source;
  if (src) {
    const dbs = (o) =>
      Object.entries(o || {})
        .map(([k, v]) => `${short(k, 20)} ${v === null ? "\u221e" : v.toFixed(1)} dB`)
        .join(", ") || "\u2013";
    side.append(
      h(
        "p",
        { id: "q-error-source" },
        h("b", { text: `${src.dominant === "weights" ? "Weights" : "Activations"} dominate the error. ` }),
        `Output SQNR with only weights quantized: ${dbs(src.weights_only)}; ` +
          `with only activations: ${dbs(src.activations_only)}.`,
      ),
    );
  }
  if (report.sensitivity?.length) {
    const scope = report.sensitivity_scope;
    side.append(
      h("h4", { text: "Most sensitive points (output SQNR, only that point quantized)" }),
      h(
        "ol",
        { class: "list sensitivity-top", id: "q-sensitivity-top" },
        report.sensitivity.slice(0, 10).map((s) =>
          h(
            "li",
            {},
            h(
              "button",
              { type: "button", class: "link mono", title: s.tensor, onclick: () => ui.pickPoint(s.tensor) },
              short(s.tensor, 30),
            ),
            ` ${s.output_sqnr_db === null ? "\u221e" : s.output_sqnr_db.toFixed(1)} dB`,
            s.with_weights
              ? h("span", {
                  class: "muted",
                  text: ` (${s.with_weights.output_sqnr_db === null ? "\u221e"
                    : s.with_weights.output_sqnr_db.toFixed(1)} with its weights)`,
                })
              : null,
          ),
        ),
      ),
      scope
        ? h("p", {
            class: "muted",
            text: `${scope.measured} of ${scope.points} points measured on ${scope.samples} sample(s), ` +
              `${CONFIG_LABELS[scope.config] || scope.config}${scope.pruning ? `; ${scope.pruning}` : ""}.`,
          })
        : null,
    );
  }
  return h(
    "div",
    { class: "curve-section", id: "q-curve" },
    h(
      "div",
      {},
      h("h4", { text: "Measured precision curve: click a point to make it your choice" }),
      h("div", { id: "q-curve-chart" }, chart),
    ),
    side,
  );
}
