// The quantization UI of the editor: the job (start, progress, cancel), the dock under the graph
// (dock.js; its tabs: table.js, depth.js, hybrid.js with curve.js), the sidebar section of the selected
// node or tensor (sections.js) and the heat-map mode (heatmap.js). It holds the state they share and
// reads the editor through a few events (editor:loaded, editor:selection) and its public methods
// (selectNode, selectTensor, model, graphView). main.js builds it before the editor's first load.
import { h, clear } from "../core/dom.js";
import { download } from "../core/api.js";
import { toast } from "../core/toast.js";
import { quantApi, followJob, TERMINAL } from "./api.js";
import { analyseDialog } from "./dialog.js";
import { HeatMap } from "./heatmap.js";
import { renderReadiness } from "../editor/panels/readiness.js";
import { vocabulary } from "../core/vocabulary.js";
import { renderDepth } from "./depth.js";
import { renderHead, renderProgress } from "./dock.js";
import { renderHybrid } from "./hybrid.js";
import { renderNodeSection, renderTensorSection } from "./sections.js";
import { renderLayers } from "./table.js";
import { quantReadiness } from "./verdict.js";

export class QuantUI {
  constructor(app) {
    this.app = app;
    this.job = null; // {id, state, progress, message, error}
    this.result = null; // {job, version, report, settings}
    this.histograms = new Map(); // tensor -> Promise of {edges, counts}
    this.int16 = new Set(); // the user's int16 tensors (starts as the recommendation)
    this.measured = null; // {int16: [...], end_to_end: {...}} of the user's choice
    this.measureJob = null;
    this.log = true;
    this.sort = { key: null, dir: 1 };
    this.filter = "";
    this.onlyInt16 = false;
    this.tab = "layers";
    this.dock = document.getElementById("quant-dock");
    this.heat = new HeatMap(app, document.getElementById("canvas-wrap"));
    this.bindToolbar();
    document.addEventListener("editor:loaded", () => this.onLoaded());
    document.addEventListener("editor:selection", () => this.onSelection());
    this.restore();
  }

  // -- editor events -----------------------------------------------------------------------------
  onLoaded() {
    this.heat.refresh();
    if (!this.dock.hidden) this.renderDock();
  }

  onSelection() {
    this.highlightRows();
    const { nodes, tensor } = this.app.selection;
    const el = this.app.sidebar;
    if (!nodes.length && !tensor) {
      // the model panel: the readiness summary goes right after the model's facts
      const anchor = el.querySelector(".kv");
      const box = renderReadiness(this.app, h("div"));
      if (anchor) anchor.after(box); else el.append(box);
      return;
    }
    if (!this.result || this.app.inBody) return;
    if (nodes.length === 1) renderNodeSection(this, el, nodes[0]);
    else if (tensor) renderTensorSection(this, el, tensor);
  }

  // -- the job -----------------------------------------------------------------------------------
  openDialog() { return analyseDialog(this); }

  async start(files, settings, onState) {
    const version = this.app.version;
    const res = await quantApi.start(this.app.sid, files, settings);
    const id = res.job_id || res.id;
    this.job = { id, state: res.state || "queued", progress: 0, message: "", version, settings };
    renderHead(this);
    onState?.(this.job);
    return id;
  }

  finished(id) { return this.job && this.job.id === id && TERMINAL.includes(this.job.state); }

  async follow(id, onState) {
    const final = await followJob(id, (st) => {
      if (this.job && this.job.id === id) Object.assign(this.job, st);
      onState?.(st);
      renderProgress(this);
    });
    if (final.state === "succeeded")
      await this.loadResult(id, this.job?.version ?? this.app.version, this.job?.settings);
    else if (final.state === "cancelled") toast("Quantization analysis cancelled.", "", 4000);
    renderHead(this);
    return final;
  }

  async cancel(id = this.job?.id) {
    if (!id) return;
    try {
      const st = await quantApi.cancel(id);
      if (this.job && this.job.id === id) Object.assign(this.job, st);
      renderProgress(this);
    } catch (err) {
      this.app.error(err);
    }
  }

  async loadResult(jobId, version, settings) {
    const report = await quantApi.report(this.app.sid, jobId);
    this.result = { job: jobId, version, report, settings: settings || {} };
    this.histograms = new Map();
    this.int16 = new Set(report.recommendation?.int16 || []);
    this.measured = null;
    this.heat.setReport(report);
    this.renderDock();
    this.app.setSelection(this.app.selection.nodes, this.app.selection.tensor); // the sidebar gains its section
    document.body.dataset.quantJob = jobId;
  }

  // A reload (or another browser) finds the session's analyses on the server: the newest one that
  // succeeded is shown, and one still running is followed.
  async restore() {
    if (!this.app.view)
      await new Promise((resolve) => document.addEventListener("editor:loaded", resolve, { once: true }));
    let list;
    try {
      list = (await quantApi.list(this.app.sid)).analyses || [];
    } catch {
      return; // no quantization service in this build, or the session is gone: the page says so elsewhere
    }
    const running = list.find((a) => !TERMINAL.includes(a.state));
    const done = list.find((a) => a.state === "succeeded");
    if (done) await this.loadResult(done.job_id, done.version, done.settings).catch((err) => this.app.error(err));
    if (running && (!done || running.created > done.created)) {
      this.job = {
        id: running.job_id,
        state: running.state,
        progress: 0,
        message: "",
        version: running.version,
        settings: running.settings,
      };
      renderHead(this);
      this.follow(running.job_id).catch((err) => this.app.error(err));
    }
  }

  // -- what the settings choose to show ------------------------------------------------------------
  get qtype() {
    const q = this.result?.settings?.qtype;
    return q === "int8" ? "int8" : "uint8";
  }

  get algorithms() {
    const report = this.result?.report;
    const chosen = this.result?.settings?.algorithms;
    const present = vocabulary().quant.algorithms.filter(
      (a) => report && Object.values(report.tensors).some((t) => t.ranges && t.ranges[a]),
    );
    return chosen && chosen.length ? present.filter((a) => chosen.includes(a)) : present;
  }

  get base() { return this.result?.report?.recommendation?.base || "uint8/minmax"; }

  producerOf(name) {
    const t = this.app.model?.tensor(name);
    return t ? t.producer : this.result?.report.tensors[name]?.node || null;
  }

  // weight name -> report entry, and node id -> its weights
  weightsOfNode(id) {
    const node = this.app.model.node(id);
    const weights = this.result?.report.weights || {};
    return (node?.inputs || []).filter((n) => n && weights[n]);
  }

  outlierOfNode(id) {
    const weights = this.result?.report.weights || {};
    const ratios = this.weightsOfNode(id)
      .map((n) => weights[n].outlier_ratio)
      .filter((v) => v !== null && v !== undefined);
    return ratios.length ? Math.max(...ratios) : null;
  }

  // -- toolbar, dock -------------------------------------------------------------------------------
  bindToolbar() {
    const on = (id, f) => document.getElementById(id)?.addEventListener("click", f);
    on("btn-quant", () => (this.dock.hidden ? this.showDock() : this.hideDock()));
  }

  setHeatmap(on) {
    if (on && !this.result) {
      toast("Run the quantization analysis first: the heat-map colours nodes by its SQNR.", "", 5000);
      on = false;
    }
    this.heat.toggle(on);
    const box = document.getElementById("q-heatmap");
    if (box) box.checked = this.heat.on;
  }

  showDock(tab) {
    if (tab) this.tab = tab;
    this.dock.hidden = false;
    document.getElementById("btn-quant")?.classList.add("on");
    this.renderDock();
  }

  hideDock() {
    this.dock.hidden = true;
    document.getElementById("btn-quant")?.classList.remove("on");
  }

  renderDock() {
    if (this.dock.hidden) return;
    clear(this.dock);
    this.head = h("div", { class: "dock-head" });
    this.body = h("div", { class: "dock-body" });
    this.dock.append(this.head, this.body);
    renderHead(this);
    this.renderBody();
  }

  renderBody() {
    const body = this.body;
    const scroll = this.scrollTop?.[this.tab] || 0;
    clear(body);
    if (!this.result) {
      body.append(
        h(
          "p",
          { class: "muted" },
          "Upload calibration data to see, for every tensor, how it quantizes: its histogram with the clip range " +
            "of each algorithm, the uint8 and int16 error, and which tensors to keep in int16. ",
          h(
            "button",
            { type: "button", class: "primary", onclick: () => this.openDialog() },
            "Analyse quantization\u2026",
          ),
        ),
      );
      return;
    }
    if (this.tab === "hybrid") renderHybrid(this, body);
    else if (this.tab === "depth" && (this.result.report.accumulated || this.result.report.local))
      renderDepth(this, body);
    else renderLayers(this, body);
    body.scrollTop = scroll; // a re-render (precision switched, an edit) keeps the reader's place
    body.onscroll = () => { this.scrollTop = { ...this.scrollTop, [this.tab]: body.scrollTop }; };
  }

  // the table's rows of the selected node or tensor
  highlightRows() {
    if (!this.body || this.dock.hidden) return;
    const { nodes, tensor } = this.app.selection;
    for (const tr of this.body.querySelectorAll("#q-table tbody tr")) {
      const layer = tr.dataset.layer ? tr.dataset.layer.split("\n") : [tr.dataset.node];
      tr.classList.toggle("selected", nodes.some((n) => layer.includes(n)) || tr.dataset.tensor === tensor);
    }
    const chart = this.body.querySelector("#q-depth-chart svg");
    if (chart) {
      const at = this.selectedPoint();
      for (const band of chart.querySelectorAll("rect.point"))
        band.classList.toggle("selected", Number(band.dataset.index) === at);
    }
  }

  // index (in the report's tensors order) of the point the graph's selection is on, or -1
  selectedPoint() {
    const { nodes, tensor } = this.app.selection;
    return Object.entries(this.result.report.tensors).findIndex(([name, entry]) =>
      name === tensor || nodes.some((n) => n === this.producerOf(name) || (entry.layer || []).includes(n)));
  }

  rangesShown(entry) {
    const out = {};
    for (const a of this.algorithms) if (entry.ranges?.[a]) out[a] = entry.ranges[a];
    return out;
  }

  precisionToggle(name, recommended) {
    const on = this.int16.has(name);
    return h(
      "span",
      { class: "precision" },
      h(
        "button",
        {
          type: "button",
          class: `seg ${on ? "" : "on"}`,
          "data-precision": "8",
          onclick: () => this.setPrecision(name, false),
        },
        this.qtype === "int8" ? "8" : "u8",
      ),
      h(
        "button",
        {
          type: "button",
          class: `seg ${on ? "on" : ""}`,
          "data-precision": "16",
          onclick: () => this.setPrecision(name, true),
        },
        "16",
      ),
      recommended ? h("span", { class: "star", title: "recommended int16 by the hybrid search" }, "\u2605") : null,
    );
  }

  setPrecision(name, int16) {
    if (int16) this.int16.add(name); else this.int16.delete(name);
    this.renderBody();
    if (this.app.selection.tensor === name || this.app.selection.nodes.includes(this.producerOf(name))) {
      this.app.setSelection(this.app.selection.nodes, this.app.selection.tensor);
    }
  }

  goTo(row) {
    if (row.node && this.app.model.node(row.node)) this.app.selectNode(row.node, true);
    else this.app.selectTensor(row.name, true);
  }

  // a point of a chart or list: select its node (or the tensor) as the table's rows do
  pickPoint(name) { this.goTo({ name, node: this.producerOf(name) }); }

  // the index of the curve point whose int16 set is the user's choice, or -1
  curveIndexOfChoice() {
    const curve = this.result.report.recommendation?.curve || [];
    return curve.findIndex((c) => c.int16.length === this.int16.size && c.int16.every((t) => this.int16.has(t)));
  }

  // a point of the curve becomes "your choice": its int16 set, with the outputs the analysis measured for it
  chooseCurvePoint(i) {
    const point = this.result.report.recommendation.curve[i];
    this.int16 = new Set(point.int16);
    this.measured = { int16: [...point.int16], end_to_end: point.outputs, k: point.k };
    this.renderBody();
  }

  async remeasure() {
    const int16 = [...this.int16];
    try {
      const res = await quantApi.measure(this.app.sid, this.result.job, int16);
      const id = res.job_id || res.id;
      if (!id) { this.setMeasured(int16, res); return; } // answered at once
      this.measureJob = { id, state: "queued", progress: 0, message: "re-measuring" };
      this.renderDock();
      const final = await followJob(id, (st) => { Object.assign(this.measureJob, st); renderProgress(this); });
      if (final.state === "succeeded") this.setMeasured(int16, final.result);
      else if (final.state !== "cancelled") this.app.error(final.error?.message || `re-measuring ${final.state}`);
    } catch (err) {
      this.app.error(err);
    }
    this.renderDock();
  }

  setMeasured(int16, result) {
    const e2e = result?.end_to_end?.hybrid || result?.end_to_end?.custom || result?.end_to_end || result;
    this.measured = { int16, end_to_end: e2e };
    this.renderDock();
  }

  exportArgs(config) {
    if (config === "custom") return ["hybrid", [...this.int16]];
    return [config, null];
  }

  downloadQdq(config) {
    const [c, int16] = this.exportArgs(config);
    const url = quantApi.qdqUrl(this.app.sid, this.result.job, c, int16);
    window.__lastDownload = url;
    download(url, "model.qdq.onnx").catch((err) => this.app.error(err));
  }

  downloadToolkitFile(config, name) {
    const [c, int16] = this.exportArgs(config);
    download(quantApi.toolkitFileUrl(this.app.sid, this.result.job, c, int16), name).catch((err) =>
      this.app.error(err),
    );
  }

  downloadTable(config) {
    const [c, int16] = this.exportArgs(config);
    const url = quantApi.tableUrl(this.app.sid, this.result.job, c, int16);
    download(url, "quant-table.json").catch((err) => this.app.error(err));
  }

  histogram(name) {
    if (!this.histograms.has(name)) {
      const p = quantApi.histogram(this.app.sid, this.result.job, name).then((res) => res.histogram || res);
      p.catch(() => this.histograms.delete(name));
      this.histograms.set(name, p);
    }
    return this.histograms.get(name);
  }

  // the quantization line of the NPU-readiness summary, which the model panel asks for
  readinessSummary() { return quantReadiness(this); }
}
