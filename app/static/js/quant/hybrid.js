// The dock's "Hybrid and export" tab: the recommended uint8/int16 mix and its verdict, the user's own
// int16 choice (re-measured end to end on request), the exports, and the end-to-end charts per output.
import { h } from "../core/dom.js";
import { vocabulary } from "../core/vocabulary.js";
import { TERMINAL } from "./api.js";
import { CONFIG_COLORS, CONFIG_LABELS, groupedBars } from "./charts.js";
import { curveSection } from "./curve.js";
import { gradePill, short, verdictLine } from "./verdict.js";

// the toolkits with a quantization file of their own, and its name
const TOOLKIT_FILES = { acuity: "model.quantize", rknn: "model.quantization.cfg" };

export function renderHybrid(ui, body) {
  const { configurations, hybrid } = vocabulary().quant;
  const report = ui.result.report;
  const rec = report.recommendation;
  const e2e = report.end_to_end || {};
  const recommended = new Set(rec?.int16 || []);
  const chosen = [...ui.int16];
  const differs = chosen.length !== recommended.size || chosen.some((t) => !recommended.has(t));
  const left = h("div", { class: "hybrid-left" });
  if (!rec) {
    left.append(
      h("p", {
        class: "muted",
        text: "The analysis ran without the end-to-end phase: no hybrid recommendation. " +
          "Run it again with the hybrid search on.",
      }),
    );
  } else {
    const judged = (report.verdict || {}).hybrid;
    // a report with the measured curve states the knee's rule; an older one its search target
    const hasDb = rec.target_sqnr_db !== null && rec.target_sqnr_db !== undefined;
    const targetDb = hasDb ? ` (${rec.target_sqnr_db.toFixed(1)} dB)` : "";
    const how = rec.rule
      ? `the knee of the curve at k = ${rec.k ?? rec.curve?.[rec.knee]?.k}: ${rec.rule} ` +
        `(goal ${rec.meets_target ? "met" : "missed"})`
      : `search target ${rec.target_rule}${targetDb} ${rec.meets_target ? "met" : "missed"}`;
    left.append(h("p", { id: "q-hybrid-verdict" }, judged ? gradePill(judged) : null,
      ` base ${CONFIG_LABELS[rec.base] || rec.base}, ${how}, ${rec.qdq_runs} QDQ run(s).`));
  }
  left.append(verdictLine(report.verdict));
  left.append(h("h4", { text: `int16 tensors of your choice (${chosen.length})` }));
  const list = h("ul", { class: "list int16-list", id: "q-int16-list" });
  if (!chosen.length) list.append(h("li", { class: "muted", text: "none: everything in the 8-bit base" }));
  for (const name of chosen) {
    list.append(
      h(
        "li",
        {},
        h(
          "button",
          { type: "button", class: "link mono", onclick: () => ui.goTo({ name, node: ui.producerOf(name) }) },
          name,
        ),
        recommended.has(name) ? h("span", { class: "star", title: "recommended" }, " \u2605") : null,
        " ",
        h(
          "button",
          {
            type: "button",
            class: "mini",
            title: "back to 8 bits",
            onclick: () => {
              ui.setPrecision(name, false);
            },
          },
          "\u2192 8-bit",
        ),
      ),
    );
  }
  left.append(list);
  const add = h("input", {
    type: "text",
    list: "q-tensor-names",
    id: "q-add-int16",
    placeholder: "add a tensor in int16",
  });
  left.append(
    h(
      "datalist",
      { id: "q-tensor-names" },
      Object.keys(report.tensors)
        .slice(0, 5000)
        .map((t) => h("option", { value: t })),
    ),
    h(
      "div",
      { class: "row" },
      add,
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            if (report.tensors[add.value.trim()]) ui.setPrecision(add.value.trim(), true);
          },
        },
        "Add",
      ),
    ),
    h(
      "div",
      { class: "row" },
      h(
        "button",
        {
          type: "button",
          class: "primary",
          id: "q-remeasure",
          disabled: !rec || !!(ui.measureJob && !TERMINAL.includes(ui.measureJob.state)),
          onclick: () => ui.remeasure(),
        },
        "Re-measure end to end",
      ),
      h(
        "button",
        {
          type: "button",
          id: "q-reset",
          disabled: !differs,
          onclick: () => {
            ui.int16 = new Set(recommended);
            ui.renderBody();
          },
        },
        "Back to the recommendation",
      ),
    ),
  );
  // exports
  const configs = [
    [hybrid, `${hybrid} (recommended)`],
    ...(differs ? [["custom", "your choice of int16 tensors"]] : []),
    ...configurations.map((c) => [c, CONFIG_LABELS[c] || c]),
  ];
  const which = h("select", { id: "q-export-config" }, configs.map(([v, l]) => h("option", { value: v }, l)));
  if (differs) which.value = "custom";
  left.append(
    h("h4", { text: "Export" }),
    h(
      "div",
      { class: "row" },
      which,
      h(
        "button",
        { type: "button", id: "q-download-qdq", onclick: () => ui.downloadQdq(which.value) },
        "Download QDQ model",
      ),
      h(
        "button",
        { type: "button", id: "q-download-table", onclick: () => ui.downloadTable(which.value) },
        "Quantization table",
      ),
      TOOLKIT_FILES[report.toolkit?.name]
        ? h(
            "button",
            {
              type: "button",
              id: "q-download-toolkit",
              onclick: () => ui.downloadToolkitFile(which.value, TOOLKIT_FILES[report.toolkit.name]),
            },
            `${report.toolkit.name === "acuity" ? "Acuity" : "RKNN"} file (${TOOLKIT_FILES[report.toolkit.name]})`,
          )
        : null,
    ),
  );
  // charts
  const right = h("div", { class: "hybrid-charts", id: "q-hybrid-charts" });
  const shown = [...configurations, hybrid].filter((c) => e2e[c]);
  const outputs = Object.keys(e2e["int16/minmax"] || e2e[shown[0]] || {});
  const extra = ui.measured ? [{ key: "custom", label: "your choice", data: ui.measured.end_to_end }] : [];
  const keyLabels = { ...CONFIG_LABELS, custom: "your choice" };
  const rowsFor = (metric) => outputs.map((o) => ({ label: short(o, 18), title: o, values: [
    ...shown.map((c) => ({ key: c, value: e2e[c][o]?.[metric] ?? null, color: CONFIG_COLORS[c] })),
    ...extra.map((x) => ({ key: x.key, value: x.data?.[o]?.[metric] ?? null, color: "#0e7490" }))] }));
  if (!outputs.length) right.append(h("p", { class: "muted", text: "No end-to-end measurement in ui report." }));
  else {
    right.append(
      h("h4", { text: `End-to-end SQNR per model output (${report.end_to_end_samples} sample(s))` }),
      groupedBars(rowsFor("sqnr_db"), { width: 460, labelW: 110, unit: "dB", keyLabels, cls: "e2e-sqnr" }),
      h("h4", { text: "Cosine similarity to the float model" }),
      groupedBars(rowsFor("cosine"), {
        width: 460,
        labelW: 110,
        unit: "",
        min: Math.min(0, ...rowsFor("cosine").flatMap((r) => r.values.map((v) => v.value ?? 1))),
        max: 1,
        keyLabels,
        cls: "e2e-cosine",
      }),
    );
    if (ui.measured)
      right.append(
        h("p", {
          class: "muted",
          id: "q-measured",
          text: `your choice: ${ui.measured.int16.length} int16 tensor(s), measured` +
            `${ui.measured.k !== undefined ? ` (point k = ${ui.measured.k} of the curve)` : ""}`,
        }),
      );
  }
  if (rec?.curve?.length) body.append(curveSection(ui, report));
  body.append(h("div", { class: "hybrid" }, left, right));
}
