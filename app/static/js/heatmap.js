// Heat-map mode of the graph: every op box coloured by the uint8 SQNR of what it produces (the
// lowest over its quantized outputs), with a legend over the canvas. The renderer's colour
// override hook does the drawing; boxes are looked up by node id, so the colours follow the
// current drawing after an edit.
import { h, clear } from "./dom.js";
import { heatColor, heatLegend, CONFIG_LABELS } from "./quant-charts.js";

export const HEAT_METRICS = ["uint8/minmax", "uint8/kl", "uint8/best", "int16/minmax"];
const METRIC_LABELS = { ...CONFIG_LABELS, "uint8/best": "uint8, best of Min-Max/KL" };

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

  // node id -> lowest SQNR (dB) of the tensors it produces or whose layer it is in, for the report and the current graph
  compute() {
    this.byNode = new Map();
    if (!this.report || !this.app.model) return;
    for (const [name, entry] of Object.entries(this.report.tensors)) {
      const producer = this.app.model.tensor(name)?.producer ?? entry.node;
      const v = tensorSqnr(entry, this.metric);
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
    if (this.on) this.apply();
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
  refresh() { if (this.on) this.apply(); }

  apply() {
    const gv = this.app.graphView;
    document.body.classList.toggle("heatmap-on", this.on);
    if (!this.on || this.app.inBody) {
      this.legend.hidden = true;
      gv.setColorOverride(null);
      return;
    }
    this.compute();
    const colors = new Map([...this.byNode].map(([id, v]) => [id, heatColor(v)]));
    gv.setColorOverride((i) => colors.get(gv.drawing.nodes[i].id) || heatColor(null));
    this.renderLegend();
  }

  renderLegend() {
    clear(this.legend);
    const select = h("select", { id: "heat-metric", title: "What colours the boxes" },
      HEAT_METRICS.map((m) => h("option", { value: m, selected: m === this.metric }, METRIC_LABELS[m])));
    select.addEventListener("change", () => this.setMetric(select.value));
    const values = [...this.byNode.values()];
    const worst = values.length ? Math.min(...values) : null;
    this.legend.append(
      h("div", { class: "heat-head" }, h("b", { text: "Heat-map" }), select,
        h("button", { type: "button", class: "close", title: "Switch the heat-map off", onclick: () => this.app.quant?.setHeatmap(false) }, "\u00d7")),
      heatLegend(`SQNR of each node's output, ${METRIC_LABELS[this.metric]}`),
      h("div", { class: "muted", text: `${this.byNode.size} nodes coloured${worst !== null ? `, worst ${worst.toFixed(1)} dB` : ""}; grey: not quantized` }));
    this.legend.hidden = false;
  }
}
