// The analysis' verdict in words and colours: grade pills, the verdict line with its thresholds,
// and the line of the NPU-readiness summary.
import { h } from "../core/dom.js";
import { TERMINAL } from "./api.js";
import { CONFIG_LABELS } from "./charts.js";
import { tensorSqnr } from "./heatmap.js";

const GRADE_STATUS = { good: "good", marginal: "warn", poor: "bad" };

// A configuration's verdict as a pill: its grade, its worst output's cosine and SQNR.
export function gradePill(judged) {
  const outs = Object.values(judged.outputs);
  const cos = Math.min(...outs.map((o) => (o.cosine ?? -1)));
  const sqnrs = outs.map((o) => o.sqnr_db).filter((v) => v !== null && v !== undefined);
  const db = sqnrs.length ? `, ${Math.min(...sqnrs).toFixed(1)} dB` : "";
  return h("span", {
    class: `pill ${GRADE_STATUS[judged.grade]}`,
    "data-grade": judged.grade,
    text: `${judged.grade}: cosine ${cos.toFixed(4)}${db}`,
  });
}

// Every measured configuration's verdict against the absolute thresholds, which it states.
export function verdictLine(verdict) {
  const entries = Object.entries(verdict || {});
  if (!entries.length)
    return h("p", { class: "muted", text: "No verdict: the analysis did not measure the outputs end to end." });
  const t = entries[0][1].thresholds;
  return h(
    "div",
    { class: "verdict", id: "q-verdict" },
    h("p", {}, ...entries.flatMap(([k, v], i) => [i ? " \u00b7 " : "", `${CONFIG_LABELS[k] || k} `, gradePill(v)])),
    h("p", {
      class: "muted",
      text: "Verdict on the measured outputs, worst output first: " +
        `good with cosine \u2265 ${t.good_cosine} and SQNR \u2265 ${t.good_sqnr_db} dB, ` +
        `marginal with cosine \u2265 ${t.marginal_cosine}, else poor.`,
    }),
  );
}

export function short(name, n = 28) { return name.length > n ? `${name.slice(0, n - 1)}\u2026` : name; }

// the verdict's cosine thresholds: below marginal red, below good amber
export function cosineTint(v, t) {
  if (v < t.marginal_cosine) return "#fde2e1";
  if (v < t.good_cosine) return "#fff1d6";
  return "";
}

// the verdict's absolute thresholds (the defaults of the analysis when the report has no verdict)
export function thresholdsOf(report) {
  return (
    Object.values(report.verdict || {})[0]?.thresholds || { good_cosine: 0.99, good_sqnr_db: 20, marginal_cosine: 0.95 }
  );
}

// The quantization line of the NPU-readiness summary (editor/panels/readiness.js): the analysis running,
// or its grades and worst tensor, coloured by the verdict; null before any analysis.
export function quantReadiness(ui) {
  if (!ui.result) {
    if (ui.job && !TERMINAL.includes(ui.job.state))
      return {
        status: "todo",
        text: `Quantization analysis running (${Math.round((ui.job.progress || 0) * 100)} %)`,
      };
    return null;
  }
  const report = ui.result.report;
  const q = ui.qtype;
  let worst = null;
  for (const [name, entry] of Object.entries(report.tensors)) {
    const v = tensorSqnr(entry, `${q}/minmax`);
    if (v !== null && (!worst || v < worst.v)) worst = { name, v };
  }
  const rec = report.recommendation;
  const links = worst
    ? [
        [
          `${short(worst.name)} (${worst.v.toFixed(1)} dB)`,
          () => ui.goTo({ name: worst.name, node: ui.producerOf(worst.name) }),
        ],
      ]
    : [];
  // the verdict decides the colour: never green unless a measured configuration meets the absolute thresholds
  const verdict = report.verdict || {};
  const key = verdict.hybrid ? "hybrid" : Object.keys(verdict)[0];
  const judged = key ? verdict[key] : null;
  const grades = Object.entries(verdict).map(([k, v]) => `${CONFIG_LABELS[k] || k} ${v.grade}`).join(", ");
  const text =
    `Quantization analysed (v${ui.result.version})${grades ? `: ${grades}` : ": not measured end to end"}` +
    `${rec ? `; hybrid with ${rec.int16.length} int16 layer(s)` : ""}; worst ${q} tensor`;
  return { status: judged ? GRADE_STATUS[judged.grade] : "todo", text, links };
}
