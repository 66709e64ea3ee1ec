// Heat-map mode of the graph: every op box coloured by a measure of what it produces (the worst
// over its quantized outputs), with a legend over the canvas that names the mode. The modes: the
// tensor's own SQNR per configuration, and where the report has them, the accumulated error (the
// fully quantized model against the float one at that point), the local error (the layer quantized
// alone on float inputs) and the sensitivity (the model outputs' SQNR with only that point
// quantized). The renderer's colour override hook does the drawing; boxes are looked up by node id,
// so the colours follow the current drawing after an edit.
import { h, clear } from "../core/dom.js";
import { heatColor, heatLegend, CONFIG_LABELS, HEAT_STOPS } from "./charts.js";

// cosine on a scale of nines: the verdict's marginal (0.95) and good (0.99) thresholds sit inside it
const COSINE_STOPS = [
  [0.9, [178, 24, 43]],
  [0.95, [239, 101, 72]],
  [0.99, [253, 219, 99]],
  [0.999, [145, 207, 96]],
  [0.9999, [26, 152, 80]],
];
// SQNR at the model outputs (and accumulated through the graph) is lower than a tensor's own
const OUTPUT_STOPS = [
  [0, [178, 24, 43]],
  [10, [239, 101, 72]],
  [20, [253, 219, 99]],
  [30, [145, 207, 96]],
  [40, [26, 152, 80]],
];

// {sqnr_db, cosine} of the report -> dB; an exact match (null SQNR with cosine 1) is Infinity
export function errorDb(m) {
  if (!m) return null;
  if (m.sqnr_db !== null && m.sqnr_db !== undefined) return m.sqnr_db;
  return m.cosine === 1 ? Infinity : null;
}

// the label of the configuration the error localisation was measured on
export function errorConfig(report) {
  const c = report.error_config || report.sensitivity_scope?.config || report.recommendation?.base || "uint8/minmax";
  return CONFIG_LABELS[c] || c;
}

// sensitivity list -> tensor -> {rank (1 = most sensitive), output_sqnr_db, cosine}
export function sensitivityOf(report) {
  const out = new Map();
  (report?.sensitivity || []).forEach((s, i) =>
    out.set(s.tensor, { rank: i + 1, db: errorDb({ sqnr_db: s.output_sqnr_db, cosine: s.cosine }), cosine: s.cosine }),
  );
  return out;
}

// mode -> {label, scale stops, unit, value(entry, name)}; `field` names the report field a mode needs
export const HEAT_MODES = {
  "uint8/minmax": { label: `tensor SQNR, ${CONFIG_LABELS["uint8/minmax"]}` },
  "uint8/kl": { label: `tensor SQNR, ${CONFIG_LABELS["uint8/kl"]}` },
  "uint8/best": { label: "tensor SQNR, uint8, best of Min-Max/KL" },
  "int16/minmax": { label: `tensor SQNR, ${CONFIG_LABELS["int16/minmax"]}` },
  "accumulated/cosine": {
    field: "accumulated",
    label: "accumulated cosine",
    stops: COSINE_STOPS,
    unit: "",
    value: (report, name) => report.accumulated[name]?.cosine ?? null,
  },
  "accumulated/sqnr": {
    field: "accumulated",
    label: "accumulated SQNR",
    stops: OUTPUT_STOPS,
    value: (report, name) => errorDb(report.accumulated[name]),
  },
  local: { field: "local", label: "local SQNR (layer alone)", value: (report, name) => errorDb(report.local[name]) },
  sensitivity: {
    field: "sensitivity",
    label: "sensitivity: output SQNR, only this point quantized",
    stops: OUTPUT_STOPS,
  },
};
export const HEAT_METRICS = Object.keys(HEAT_MODES);

// what each mode says, in the legend
const MODE_HELP = {
  "accumulated/cosine": (c) => `Cosine of the fully quantized model (${c}) to the float model, at each node's output.`,
  "accumulated/sqnr": (c) => `SQNR of the fully quantized model (${c}) against the float model, at each node's output.`,
  local: (c) => `SQNR of each layer quantized alone (${c}), fed float inputs.`,
  sensitivity: (c) => `Worst model-output SQNR with only this point quantized (${c}): low means the outputs feel it.`,
};

export function tensorSqnr(entry, metric) {
  const s = entry && entry.sqnr_db;
  if (!s) return null;
  if (metric === "uint8/best") {
    const v = [s["uint8/minmax"], s["uint8/kl"]].filter((x) => x !== null && x !== undefined);
    return v.length ? Math.max(...v) : null;
  }
  const v = s[metric];
  return v === undefined ? null : v;
}

export class HeatMap {
  constructor(app, host) {
    this.app = app;
    this.on = false;
    this.metric = "uint8/minmax";
    this.report = null;
    this.byNode = new Map();
    this.legend = h("div", { class: "heat-legend-box", id: "heat-legend", hidden: true });
    host.append(this.legend);
  }

  // node id -> lowest SQNR (dB) of the tensors it produces or whose layer it is in, for the report and the
  // current graph
  compute() {
    this.byNode = new Map();
    if (!this.report || !this.app.model) return;
    const mode = HEAT_MODES[this.metric];
    const sens = mode.field === "sensitivity" ? sensitivityOf(this.report) : null;
    for (const [name, entry] of Object.entries(this.report.tensors)) {
      const producer = this.app.model.tensor(name)?.producer ?? entry.node;
      const v = sens
        ? (sens.get(name)?.db ?? null)
        : mode.value
          ? mode.value(this.report, name)
          : tensorSqnr(entry, this.metric);
      if (v === null) continue;
      // every node of the tensor's layer (a fused Conv+BN+activation) takes the layer's colour
      for (const node of new Set([...(entry.layer || []), producer].filter(Boolean))) {
        const old = this.byNode.get(node);
        this.byNode.set(node, old === undefined ? v : Math.min(old, v));
      }
    }
  }

  setReport(report) {
    this.report = report;
    if (!this.modes().includes(this.metric)) this.metric = "uint8/minmax";
    if (this.on) this.apply();
  }

  // the modes this report can colour by: an older report has no accumulated, local or sensitivity
  modes() {
    return HEAT_METRICS.filter((m) => !HEAT_MODES[m].field || this.report?.[HEAT_MODES[m].field]);
  }

  toggle(on = !this.on) {
    this.on = Boolean(on && this.report);
    this.apply();
    return this.on;
  }

  setMetric(metric) {
    this.metric = metric;
    this.apply();
  }

  // after every load of the graph (an edit, a body opened): recompute for the new drawing
  refresh() {
    if (this.on) this.apply();
  }

  apply() {
    const gv = this.app.graphView;
    document.body.classList.toggle("heatmap-on", this.on);
    if (!this.on || this.app.inBody) {
      this.legend.hidden = true;
      gv.setColorOverride(null);
      return;
    }
    this.compute();
    const stops = HEAT_MODES[this.metric].stops || HEAT_STOPS;
    const colors = new Map([...this.byNode].map(([id, v]) => [id, heatColor(v, stops)]));
    gv.setColorOverride((i) => colors.get(gv.drawing.nodes[i].id) || heatColor(null));
    this.renderLegend();
  }

  renderLegend() {
    clear(this.legend);
    const mode = HEAT_MODES[this.metric];
    const select = h(
      "select",
      { id: "heat-metric", title: "What colours the boxes" },
      this.modes().map((m) => h("option", { value: m, selected: m === this.metric }, HEAT_MODES[m].label)),
    );
    select.addEventListener("change", () => this.setMetric(select.value));
    const values = [...this.byNode.values()];
    const worst = values.length ? Math.min(...values) : null;
    const unit = mode.unit ?? "dB";
    this.legend.dataset.mode = this.metric;
    this.legend.append(
      ...[
        h(
          "div",
          { class: "heat-head" },
          h("b", { text: "Heat-map" }),
          select,
          h(
            "button",
            {
              type: "button",
              class: "close",
              title: "Switch the heat-map off",
              onclick: () => this.app.quant?.setHeatmap(false),
            },
            "\u00d7",
          ),
        ),
        heatLegend(mode.label, { stops: mode.stops || HEAT_STOPS, unit }),
        MODE_HELP[this.metric]
          ? h("div", { class: "muted", text: MODE_HELP[this.metric](errorConfig(this.report)) })
          : null,
        h("div", {
          class: "muted",
          id: "heat-summary",
          text: `${this.byNode.size} nodes coloured` +
            `${worst !== null ? `, worst ${unit ? `${worst.toFixed(1)} ${unit}` : worst.toFixed(4)}` : ""}` +
            `; grey: not quantized${mode.field ? " or not measured" : ""}`,
        }),
      ].filter(Boolean),
    );
    this.legend.hidden = false;
  }
}
