// The quantization section of the sidebar: for the selected node or tensor, its activation histogram
// with each algorithm's clip range, its error facts and SQNR bars, and the view of its weights.
import { clear, fmt, h, shapeText } from "../core/dom.js";
import { errorMessage } from "../core/toast.js";
import { quantApi } from "./api.js";
import {
  ALGORITHM_LABELS, ALGORITHM_STYLES, channelRanges, clipHistogram, groupedBars, plainHistogram,
} from "./charts.js";
import { errorConfig, errorDb, sensitivityOf, tensorSqnr } from "./heatmap.js";

export function renderNodeSection(ui, el, id) {
  const node = ui.app.model.node(id);
  if (!node) return;
  const report = ui.result.report;
  let tensors = node.outputs.filter((t) => t && report.tensors[t]);
  // a node inside a fused layer (a Conv before its BN and activation) shows its layer's output
  if (!tensors.length)
    tensors = Object.keys(report.tensors).filter((t) => (report.tensors[t].layer || []).includes(id));
  const weights = ui.weightsOfNode(id);
  if (!tensors.length && !weights.length) {
    el.append(
      h(
        "section",
        { class: "qsection" },
        h("h3", { text: "Quantization" }),
        h("p", { class: "muted", text: "No float output of ui node is quantized." }),
      ),
    );
    return;
  }
  const section = h("section", { class: "qsection", id: "q-section" }, h("h3", { text: "Quantization" }));
  const anchor = el.querySelector(":scope > .row");
  if (anchor) anchor.after(section); else el.append(section);
  if (tensors.length) activationView(ui, section, tensors);
  for (const w of weights) weightView(ui, section, w);
}

export function renderTensorSection(ui, el, name) {
  const report = ui.result.report;
  if (report.tensors[name]) {
    const section = h("section", { class: "qsection", id: "q-section" }, h("h3", { text: "Quantization" }));
    const anchor = el.querySelector(":scope > .kv");
    if (anchor) anchor.after(section); else el.append(section);
    activationView(ui, section, [name]);
  } else if (report.weights?.[name]) {
    const section = h("section", { class: "qsection", id: "q-section" }, h("h3", { text: "Quantization" }));
    el.append(section);
    weightView(ui, section, name);
  }
}

export function activationView(ui, section, tensors) {
  let current = tensors[0];
  const picker =
    tensors.length > 1
      ? h(
          "select",
          { id: "q-tensor-pick" },
          tensors.map((t) => h("option", { value: t }, t)),
        )
      : null;
  const log = h("input", { type: "checkbox", id: "q-log", checked: ui.log });
  const chart = h("div", { id: "q-histogram", class: "qchart-box" });
  const bars = h("div", { id: "q-sqnr" });
  const facts = h("div", { id: "q-facts" });
  const draw = () => {
    const entry = ui.result.report.tensors[current];
    clear(facts).append(tensorFacts(ui, current, entry));
    clear(bars).append(sqnrBars(ui, entry));
    clear(chart).append(h("span", { class: "muted", text: "histogram\u2026" }));
    ui.histogram(current)
      .then((hist) => {
        if (!chart.isConnected) return;
        clear(chart).append(
          hist.counts.length
            ? clipHistogram(hist, ui.rangesShown(entry), { log: ui.log, label: current })
            : h("span", { class: "muted", text: "no finite values" }),
        );
        chart.dataset.tensor = current;
      })
      .catch((err) => {
        if (chart.isConnected) clear(chart).append(h("span", { class: "pill bad", text: errorMessage(err) }));
      });
  };
  log.addEventListener("change", () => { ui.log = log.checked; draw(); });
  picker?.addEventListener("change", () => { current = picker.value; draw(); });
  section.append(
    h(
      "div",
      { class: "row" },
      picker || h("span", { class: "mono tname", text: current, title: current }),
      h("label", { class: "check" }, log, " log scale"),
    ),
    chart,
    facts,
    bars,
  );
  draw();
}

export function tensorFacts(ui, name, entry) {
  const rows = ui.algorithms
    .filter((a) => entry.ranges?.[a])
    .map((a) =>
      h(
        "div",
        { class: "range-row", "data-algorithm": a },
        h("span", {
          class: "swatch",
          style: `border-color:${ALGORITHM_STYLES[a].color};` +
            `border-style:${ALGORITHM_STYLES[a].dash ? "dashed" : "solid"}`,
        }),
        h("span", { text: ALGORITHM_LABELS[a] }),
        h("span", { class: "mono", text: `[${fmt(entry.ranges[a][0])}, ${fmt(entry.ranges[a][1])}]` }),
      ),
    );
  const prec = ui.precisionToggle(name, (ui.result.report.recommendation?.int16 || []).includes(name));
  return h("div", {}, h("div", { class: "ranges" }, rows), errorFacts(ui, name),
    h("div", { class: "row" }, h("span", { class: "muted", text: "precision in your hybrid" }), prec,
      entry.nonfinite ? h("span", { class: "pill bad", text: `${entry.nonfinite} non-finite values` }) : null));
}

// where ui point's error is born, as the table's columns say it (nothing for an older report)
export function errorFacts(ui, name) {
  const report = ui.result.report;
  const show = (v) => (v === Infinity ? "\u221e" : v === null || v === undefined ? "\u2013" : v.toFixed(1));
  const acc = report.accumulated?.[name], local = report.local?.[name], sens = sensitivityOf(report).get(name);
  const parts = [
    acc
      ? `accumulated cosine ${acc.cosine === null ? "\u2013" : acc.cosine.toFixed(4)}, ${show(errorDb(acc))} dB`
      : null,
    local ? `local ${show(errorDb(local))} dB` : null,
    sens
      ? `outputs at ${show(sens.db)} dB with only ui point quantized (#${sens.rank} of ${report.sensitivity.length})`
      : null,
  ].filter(Boolean);
  return parts.length
    ? h("div", {
        class: "muted error-facts",
        id: "q-error-facts",
        text: `${errorConfig(report)}: ${parts.join("; ")}`,
      })
    : null;
}

export function sqnrBars(ui, entry) {
  const q = ui.qtype;
  const rows = ui.algorithms.map((a) => ({ label: ALGORITHM_LABELS[a], values: [
    { key: q, value: tensorSqnr(entry, `${q}/${a}`), color: "#d97706" },
    { key: "int16", value: tensorSqnr(entry, `int16/${a}`), color: "#2f5fb3" }] }));
  return h("div", {}, h("div", { class: "muted", text: "SQNR of ui tensor per clip range (higher is better)" }),
    groupedBars(rows, { width: 336, unit: "dB", keyLabels: { [q]: q, int16: "int16" }, cls: "tensor-sqnr" }));
}

export function weightView(ui, section, name) {
  const w = ui.result.report.weights[name];
  const box = h("div", { class: "weight-view", "data-weight": name });
  box.append(
    h("h4", {}, "Weight ", h("span", { class: "mono", text: name })),
    h("div", {
      class: "muted",
      text: `[${shapeText(w.shape)}], channel axis ${w.channel_axis ?? "none"}, ` +
        `max|w|/std ${w.outlier_ratio === null ? "\u2013" : w.outlier_ratio.toFixed(1)}`,
    }),
    groupedBars(
      [
        {
          label: "uint8 weights",
          values: [
            { key: "per_tensor", value: w.sqnr_db?.per_tensor ?? null, color: "#d97706" },
            { key: "per_channel", value: w.sqnr_db?.per_channel ?? null, color: "#2f5fb3" },
          ],
        },
      ],
      {
        width: 336,
        unit: "dB",
        keyLabels: { per_tensor: "per-tensor scale", per_channel: "per-channel scales" },
        cls: "weight-sqnr",
      },
    ),
  );
  const hist = h("div", { class: "weight-histogram" }, h("span", { class: "muted", text: "histogram\u2026" }));
  const channels = h("div", { class: "weight-channels" });
  box.append(
    h("div", { class: "muted", text: "values" }),
    hist,
    h("div", { class: "muted", text: "per-channel ranges" }),
    channels,
  );
  section.append(box);
  quantApi
    .weightView(ui.app.sid, name, w.channel_axis)
    .then((res) => {
      if (hist.isConnected) {
        clear(hist).append(
          res.histogram.counts.length
            ? plainHistogram(res.histogram.counts, res.histogram.edges, { height: 80 })
            : h("span", { class: "muted", text: "no finite values" }),
        );
      }
      if (channels.isConnected) {
        clear(channels).append(
          w.channel_axis === null || w.channel_axis === undefined
            ? h("span", { class: "muted", text: "no channel axis" })
            : channelRanges(res.min, res.max),
        );
      }
    })
    .catch((err) => {
      if (hist.isConnected) clear(hist).append(h("span", { class: "muted", text: errorMessage(err) }));
    });
}
