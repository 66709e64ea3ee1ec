// The quantization UI of the editor: the job (start, progress, cancel), the dock under the graph
// (per-layer table, hybrid panel with end-to-end charts and exports), the sidebar section of the
// selected node or tensor (activation histogram with clip ranges, SQNR per algorithm, weight view)
// and the heat-map mode. It reads the editor through a few events (editor:loaded,
// editor:selection) and its public methods (selectNode, selectTensor, model, graphView).
import { h, clear, fmt, shapeText } from "./dom.js";
import { download } from "./api.js";
import { toast, errorMessage } from "./toast.js";
import { quantApi, followJob, TERMINAL } from "./quant-api.js";
import { analyseDialog } from "./quant-dialog.js";
import { HeatMap, tensorSqnr, errorDb, errorConfig, sensitivityOf } from "./heatmap.js";
import { lineChart, GRADE_COLORS } from "./quant-lines.js";
import { renderReadiness } from "./readiness.js";
import {
  ALGORITHMS, ALGORITHM_LABELS, ALGORITHM_STYLES, CONFIG_LABELS, CONFIG_COLORS,
  clipHistogram, groupedBars, channelRanges, plainHistogram, rangeGlyph, ticks,
} from "./quant-charts.js";

const CONFIGS = ["uint8/minmax", "uint8/kl", "int16/minmax", "hybrid"];
// the toolkits with a quantization file of their own, and its name
const TOOLKIT_FILES = { acuity: "model.quantize", rknn: "model.quantization.cfg" };
const TABLE_LIMIT = 1500;

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
    // this module may run after the editor's first load (its files arrive later): catch up on it
    if (app.view) { this.onLoaded(); this.onSelection(); }
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
    if (nodes.length === 1) this.renderNodeSection(el, nodes[0]);
    else if (tensor) this.renderTensorSection(el, tensor);
  }

  // -- the job -----------------------------------------------------------------------------------
  openDialog() { return analyseDialog(this); }

  async start(files, settings, onState) {
    const version = this.app.version;
    const res = await quantApi.start(this.app.sid, files, settings);
    const id = res.job_id || res.id;
    this.job = { id, state: res.state || "queued", progress: 0, message: "", version, settings };
    this.renderHead();
    onState?.(this.job);
    return id;
  }

  finished(id) { return this.job && this.job.id === id && TERMINAL.includes(this.job.state); }

  async follow(id, onState) {
    const final = await followJob(id, (st) => {
      if (this.job && this.job.id === id) Object.assign(this.job, st);
      onState?.(st);
      this.renderProgress();
    });
    if (final.state === "succeeded")
      await this.loadResult(id, this.job?.version ?? this.app.version, this.job?.settings);
    else if (final.state === "cancelled") toast("Quantization analysis cancelled.", "", 4000);
    this.renderHead();
    return final;
  }

  async cancel(id = this.job?.id) {
    if (!id) return;
    try {
      const st = await quantApi.cancel(id);
      if (this.job && this.job.id === id) Object.assign(this.job, st);
      this.renderProgress();
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
      this.renderHead();
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
    const present = ALGORITHMS.filter(
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
    this.renderHead();
    this.renderBody();
  }

  renderHead() {
    if (!this.head || this.dock.hidden) return;
    clear(this.head);
    const r = this.result;
    const depth = Boolean(r?.report.accumulated || r?.report.local);
    const tabs = h(
      "div",
      { class: "tabs", role: "tablist" },
      [
        ["layers", "Layers", true],
        ["depth", "Error by depth", depth],
        ["hybrid", "Hybrid and export", true],
      ].map(([key, label, has]) =>
        h(
          "button",
          {
            type: "button",
            role: "tab",
            class: this.tab === key ? "tab on" : "tab",
            id: `q-tab-${key}`,
            disabled: !r || !has,
            title: has ? null : "This analysis did not measure the accumulated and local error: run it again",
            onclick: () => {
              this.tab = key;
              this.renderDock();
            },
          },
          label,
        ),
      ),
    );
    const heat = h("input", { type: "checkbox", id: "q-heatmap", checked: this.heat.on, disabled: !r });
    heat.addEventListener("change", () => this.setHeatmap(heat.checked));
    let info = "no analysis yet";
    if (r) {
      const rep = r.report;
      info = `${rep.samples} sample(s)${rep.synthetic ? " (synthetic)" : ""} \u00b7 ${Object.keys(rep.tensors).length} tensors \u00b7 model v${r.version}`;
    }
    this.progressBox = h("span", { class: "dock-progress" });
    this.head.append(
      ...[
        h("b", { text: "Quantization" }),
        tabs,
        h("span", { class: "muted", id: "q-info", text: info }),
        r && r.version !== this.app.version
          ? h(
              "span",
              {
                class: "pill warn",
                title: "The model was edited after the analysis; run it again to measure the current model.",
              },
              `the model is now v${this.app.version}`,
            )
          : null,
        this.progressBox,
        h("span", { class: "spacer" }),
        h("label", { class: "check" }, heat, " heat-map"),
        h(
          "button",
          { type: "button", id: "q-analyse", onclick: () => this.openDialog() },
          r ? "Analyse again\u2026" : "Analyse quantization\u2026",
        ),
        h("button", { type: "button", class: "close", title: "Close", onclick: () => this.hideDock() }, "\u00d7"),
      ].filter(Boolean),
    );
    this.renderProgress();
  }

  renderProgress() {
    const box = this.progressBox;
    if (!box) return;
    clear(box);
    const jobs = [this.job, this.measureJob].filter((j) => j && !TERMINAL.includes(j.state));
    for (const j of jobs) {
      box.append(
        h("progress", { max: "1", value: String(j.progress || 0), class: "job-progress" }),
        h("span", { class: "muted", text: ` ${Math.round((j.progress || 0) * 100)} % ${j.message || j.state} ` }),
        h(
          "button",
          {
            type: "button",
            class: "danger",
            id: j === this.job ? "q-cancel" : "q-cancel-measure",
            onclick: () => this.cancel(j.id),
          },
          "Cancel",
        ),
      );
    }
    if (this.job && ["failed", "interrupted"].includes(this.job.state)) {
      box.append(
        h("span", {
          class: "pill bad",
          id: "q-failed",
          text: `analysis ${this.job.state}: ${this.job.error?.message || ""}`,
        }),
      );
    }
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
          "Upload calibration data to see, for every tensor, how it quantizes: its histogram with the clip range of each algorithm, the uint8 and int16 error, and which tensors to keep in int16. ",
          h(
            "button",
            { type: "button", class: "primary", onclick: () => this.openDialog() },
            "Analyse quantization\u2026",
          ),
        ),
      );
      return;
    }
    if (this.tab === "hybrid") this.renderHybrid(body);
    else if (this.tab === "depth" && (this.result.report.accumulated || this.result.report.local))
      this.renderDepth(body);
    else this.renderLayers(body);
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

  // -- per-layer table -----------------------------------------------------------------------------
  columns() {
    const q = this.qtype;
    const report = this.result.report;
    const config = errorConfig(report);
    const cos = (v) => (v === 1 ? "1" : v.toFixed(4));
    const limits = thresholdsOf(report);
    // where the error is born (issue 14): only for a report that measured it
    const born = [
      report.accumulated
        ? {
            key: "acc/cosine",
            label: "acc cos",
            value: (r) => r.acc?.cosine ?? null,
            num: true,
            format: cos,
            tint: (v) => cosineTint(v, limits),
            title: `accumulated: the fully quantized model (${config}) against the float model, at this point`,
          }
        : null,
      report.accumulated
        ? {
            key: "acc/sqnr",
            label: "acc dB",
            value: (r) => errorDb(r.acc),
            num: true,
            title: `accumulated SQNR: the fully quantized model (${config}) against the float model, at this point`,
          }
        : null,
      report.local
        ? {
            key: "local",
            label: "local dB",
            value: (r) => errorDb(r.local),
            num: true,
            title: `local SQNR: this layer quantized alone (${config}, weights and output), fed float inputs`,
          }
        : null,
      report.sensitivity
        ? {
            key: "sens",
            label: "sens dB",
            value: (r) => r.sens?.db ?? null,
            num: true,
            title:
              "worst model-output SQNR when only this point's activation is quantized (lower: the point matters more)",
          }
        : null,
      report.sensitivity
        ? {
            key: "sens/rank",
            label: "sens #",
            value: (r) => r.sens?.rank ?? null,
            num: true,
            format: (v) => `#${v}`,
            tint: null,
            title: "rank by sensitivity, 1 = hurts the outputs most",
          }
        : null,
    ].filter(Boolean);
    return [
      { key: "tensor", label: "tensor", value: (r) => r.name, cls: "mono name" },
      { key: "op", label: "op", value: (r) => r.op || "" },
      {
        key: "range",
        label: "range per algorithm",
        value: (r) => (r.entry.ranges?.minmax ? r.entry.ranges.minmax[1] - r.entry.ranges.minmax[0] : null),
      },
      { key: `${q}/minmax`, label: `${q} Min-Max dB`, value: (r) => tensorSqnr(r.entry, `${q}/minmax`), num: true },
      { key: `${q}/kl`, label: `${q} KL dB`, value: (r) => tensorSqnr(r.entry, `${q}/kl`), num: true },
      { key: "int16/minmax", label: "int16 dB", value: (r) => tensorSqnr(r.entry, "int16/minmax"), num: true },
      ...born,
      {
        key: "outlier",
        label: "weight outliers",
        value: (r) => r.outlier,
        num: true,
        tint: null,
        title: "max |w| / std of the node's weights",
      },
      { key: "precision", label: "precision", value: (r) => (this.int16.has(r.name) ? 1 : 0) },
    ];
  }

  rows() {
    const report = this.result.report;
    const recommended = new Set(report.recommendation?.int16 || []);
    const sens = sensitivityOf(report);
    return Object.entries(report.tensors).map(([name, entry], index) => {
      const node = this.producerOf(name);
      return {
        name,
        entry,
        index,
        node,
        op: entry.op_type || this.app.model.node(node)?.op_type || (node ? "" : "input"),
        outlier: node ? this.outlierOfNode(node) : null,
        recommended: recommended.has(name),
        acc: report.accumulated?.[name],
        local: report.local?.[name],
        sens: sens.get(name),
      };
    });
  }

  renderLayers(body) {
    const cols = this.columns();
    let rows = this.rows();
    const f = this.filter.trim().toLowerCase();
    if (f)
      rows = rows.filter(
        (r) =>
          r.name.toLowerCase().includes(f) ||
          (r.op || "").toLowerCase().includes(f) ||
          (r.node || "").toLowerCase().includes(f),
      );
    if (this.onlyInt16) rows = rows.filter((r) => this.int16.has(r.name));
    const col = cols.find((c) => c.key === this.sort.key);
    if (col) {
      const dir = this.sort.dir;
      rows.sort((a, b) => {
        const va = col.value(a), vb = col.value(b);
        const na = va === null || va === undefined, nb = vb === null || vb === undefined;
        if (na || nb) return na === nb ? a.index - b.index : na ? 1 : -1; // no value: always last
        if (typeof va === "string") return dir * va.localeCompare(vb) || a.index - b.index;
        return dir * (va - vb) || a.index - b.index;
      });
    }
    const filter = h("input", {
      type: "search",
      id: "q-filter",
      placeholder: "filter by tensor, node or op",
      value: this.filter,
    });
    filter.addEventListener("input", () => {
      this.filter = filter.value;
      clearTimeout(this.filterTimer);
      this.filterTimer = setTimeout(() => {
        this.renderBody();
        const el = document.getElementById("q-filter");
        el.focus();
        el.setSelectionRange(el.value.length, el.value.length);
      }, 150);
    });
    const only = h("input", { type: "checkbox", id: "q-only-int16", checked: this.onlyInt16 });
    only.addEventListener("change", () => { this.onlyInt16 = only.checked; this.renderBody(); });
    body.append(
      h(
        "div",
        { class: "row table-tools" },
        filter,
        h("label", { class: "check" }, only, " int16 only"),
        h("span", {
          class: "muted",
          id: "q-count",
          text: `${rows.length} tensor(s)${rows.length > TABLE_LIMIT ? `, first ${TABLE_LIMIT} shown` : ""}`,
        }),
        h("span", { class: "muted" }, "Click a column to sort, a row to find its node in the graph."),
      ),
    );
    const head = h(
      "tr",
      {},
      cols.map((c) =>
        h(
          "th",
          {
            "data-key": c.key,
            class: `${c.num ? "num" : ""} ${this.sort.key === c.key ? (this.sort.dir > 0 ? "asc" : "desc") : ""}`,
            title: c.title || `sort by ${c.label}`,
            onclick: () => {
              this.sort = { key: c.key, dir: this.sort.key === c.key ? -this.sort.dir : 1 };
              this.renderBody();
            },
          },
          c.label,
        ),
      ),
    );
    const tbody = h("tbody");
    const selected = new Set(this.app.selection.nodes);
    for (const r of rows.slice(0, TABLE_LIMIT)) {
      const layer = r.entry.layer?.length ? r.entry.layer : [r.node];
      const tr = h("tr", { "data-tensor": r.name, "data-node": r.node || "", "data-layer": layer.join("\n"),
        class: layer.some((n) => selected.has(n)) || this.app.selection.tensor === r.name ? "selected" : "" });
      tr.addEventListener("click", (e) => { if (!e.target.closest("button, select, input")) this.goTo(r); });
      for (const c of cols) {
        let content;
        if (c.key === "range") content = rangeGlyph(this.rangesShown(r.entry), { width: 110 });
        else if (c.key === "precision") content = this.precisionToggle(r.name, r.recommended);
        else if (c.num) {
          const v = c.value(r);
          content =
            v === null || v === undefined
              ? "\u2013"
              : v === Infinity
                ? "\u221e"
                : c.format
                  ? c.format(v)
                  : v.toFixed(1);
        } else content = c.value(r);
        const td = h(
          "td",
          {
            class: `${c.cls || ""} ${c.num ? "num" : ""}`,
            title: c.key === "tensor" ? r.name : null,
            "data-col": c.key,
          },
          content,
        );
        const tint = c.tint === undefined ? sqnrTint : c.tint;
        if (c.num && tint) {
          const v = c.value(r);
          if (v !== null && v !== undefined) td.style.background = tint(v);
        }
        tr.append(td);
      }
      tbody.append(tr);
    }
    body.append(
      h("div", { class: "table-wrap" }, h("table", { class: "qtable", id: "q-table" }, h("thead", {}, head), tbody)),
    );
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

  // -- where the error is born: the accumulated and local error along the graph's depth -----------
  renderDepth(body) {
    const report = this.result.report;
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
        ...[...this.feedingPoints(names[i], points)]
          .map((t) => acc[t]?.cosine)
          .filter((v) => v !== null && v !== undefined),
      );
      if (!fall || from - c > fall.by) fall = { i, by: from - c, from, to: c };
    });
    const marginal = cosines.findIndex((c) => c !== null && c < limits.marginal_cosine);
    const link = (i) =>
      h("button", { type: "button", class: "link mono", onclick: () => this.pickPoint(names[i]) }, names[i]);
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
    const width = Math.max(640, (this.body.clientWidth || 900) - 30);
    const chart = lineChart({
      points: names.map((n, i) => ({ key: n, label: `#${i + 1} ${n} (${report.tensors[n].op_type || ""})`, x: i })),
      width,
      panelHeight: 96,
      cls: "depth-chart",
      selected: this.selectedPoint(),
      xLabel: "quantization points in graph order (depth) \u2192",
      xTicks: [...new Set([1, ...ticks(1, names.length, 8), names.length])].map((k) => ({ x: k - 1, label: `#${k}` })),
      notes:
        fall && fall.by > 0
          ? [{ index: fall.i, label: `cosine falls most (${short(names[fall.i], 24)})`, color: "#b42318" }]
          : [],
      onPick: (i) => this.pickPoint(names[i]),
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
        text: "Hover a point to name it, click it to find it in the graph. Accumulated: the fully quantized model against the float model at that point; local: that layer quantized alone, fed float inputs. Where the accumulated line falls and the local one does not, the error was born earlier.",
      }),
    );
  }

  // the quantization points that `name` is computed from directly: the nearest ones upstream
  feedingPoints(name, points) {
    const model = this.app.model;
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

  // a point of a chart or list: select its node (or the tensor) as the table's rows do
  pickPoint(name) { this.goTo({ name, node: this.producerOf(name) }); }

  // -- hybrid panel --------------------------------------------------------------------------------
  renderHybrid(body) {
    const report = this.result.report;
    const rec = report.recommendation;
    const e2e = report.end_to_end || {};
    const recommended = new Set(rec?.int16 || []);
    const chosen = [...this.int16];
    const differs = chosen.length !== recommended.size || chosen.some((t) => !recommended.has(t));
    const left = h("div", { class: "hybrid-left" });
    if (!rec) {
      left.append(
        h("p", {
          class: "muted",
          text: "The analysis ran without the end-to-end phase: no hybrid recommendation. Run it again with the hybrid search on.",
        }),
      );
    } else {
      const judged = (report.verdict || {}).hybrid;
      // a report with the measured curve states the knee's rule; an older one its search target
      const how = rec.rule
        ? `the knee of the curve at k = ${rec.k ?? rec.curve?.[rec.knee]?.k}: ${rec.rule} (goal ${rec.meets_target ? "met" : "missed"})`
        : `search target ${rec.target_rule}${rec.target_sqnr_db !== null && rec.target_sqnr_db !== undefined ? ` (${rec.target_sqnr_db.toFixed(1)} dB)` : ""} ${rec.meets_target ? "met" : "missed"}`;
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
            { type: "button", class: "link mono", onclick: () => this.goTo({ name, node: this.producerOf(name) }) },
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
                this.setPrecision(name, false);
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
              if (report.tensors[add.value.trim()]) this.setPrecision(add.value.trim(), true);
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
            disabled: !rec || !!(this.measureJob && !TERMINAL.includes(this.measureJob.state)),
            onclick: () => this.remeasure(),
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
              this.int16 = new Set(recommended);
              this.renderBody();
            },
          },
          "Back to the recommendation",
        ),
      ),
    );
    // exports
    const configs = [
      ["hybrid", "hybrid (recommended)"],
      ...(differs ? [["custom", "your choice of int16 tensors"]] : []),
      ["uint8/minmax", "uint8 Min-Max"],
      ["uint8/kl", "uint8 KL"],
      ["int16/minmax", "int16"],
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
          { type: "button", id: "q-download-qdq", onclick: () => this.downloadQdq(which.value) },
          "Download QDQ model",
        ),
        h(
          "button",
          { type: "button", id: "q-download-table", onclick: () => this.downloadTable(which.value) },
          "Quantization table",
        ),
        TOOLKIT_FILES[report.toolkit?.name]
          ? h(
              "button",
              {
                type: "button",
                id: "q-download-toolkit",
                onclick: () => this.downloadToolkitFile(which.value, TOOLKIT_FILES[report.toolkit.name]),
              },
              `${report.toolkit.name === "acuity" ? "Acuity" : "RKNN"} file (${TOOLKIT_FILES[report.toolkit.name]})`,
            )
          : null,
      ),
    );
    // charts
    const right = h("div", { class: "hybrid-charts", id: "q-hybrid-charts" });
    const outputs = Object.keys(e2e["int16/minmax"] || e2e[CONFIGS.find((c) => e2e[c])] || {});
    const configsShown = CONFIGS.filter((c) => e2e[c]);
    const extra = this.measured ? [{ key: "custom", label: "your choice", data: this.measured.end_to_end }] : [];
    const keyLabels = { ...CONFIG_LABELS, custom: "your choice" };
    const rowsFor = (metric) => outputs.map((o) => ({ label: short(o, 18), title: o, values: [
      ...configsShown.map((c) => ({ key: c, value: e2e[c][o]?.[metric] ?? null, color: CONFIG_COLORS[c] })),
      ...extra.map((x) => ({ key: x.key, value: x.data?.[o]?.[metric] ?? null, color: "#0e7490" }))] }));
    if (!outputs.length) right.append(h("p", { class: "muted", text: "No end-to-end measurement in this report." }));
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
      if (this.measured)
        right.append(
          h("p", {
            class: "muted",
            id: "q-measured",
            text: `your choice: ${this.measured.int16.length} int16 tensor(s), measured${this.measured.k !== undefined ? ` (point k = ${this.measured.k} of the curve)` : ""}`,
          }),
        );
    }
    if (rec?.curve?.length) body.append(this.curveSection(report));
    body.append(h("div", { class: "hybrid" }, left, right));
  }

  // The measured precision curve (output SQNR and cosine for k points in int16, most sensitive
  // first), its knee, and why the error is there: which of weights and activations dominates, and
  // the points the outputs feel most. A point of the curve clicked becomes "your choice".
  curveSection(report) {
    const rec = report.recommendation;
    const curve = rec.curve;
    const limits = thresholdsOf(report);
    const worst = (outs, metric) => {
      const v = Object.values(outs || {})
        .map((o) => (metric === "cosine" ? o.cosine : errorDb(o)))
        .filter((x) => x !== null && x !== undefined);
      return v.length ? Math.min(...v) : null;
    };
    const mine = this.curveIndexOfChoice();
    const knee = rec.knee ?? -1;
    const notes = [];
    if (knee >= 0) notes.push({ index: knee, label: "knee: recommended", color: "#7c3aed" });
    if (mine >= 0 && mine !== knee) notes.push({ index: mine, label: "your choice", color: "#0e7490" });
    const chart = lineChart({
      points: curve.map((c, i) => ({
        key: String(c.k),
        x: Math.log2(1 + c.k),
        label: `k = ${c.k} int16 point(s): ${c.grade || "not graded"}${i === knee ? ", the knee (recommended)" : ""}${c.note ? `\n${c.note}` : ""}`,
      })),
      width: 560,
      panelHeight: 92,
      cls: "curve-chart",
      selected: mine,
      notes,
      xTicks: curve.map((c) => ({ x: Math.log2(1 + c.k), label: String(c.k) })),
      xLabel: "points in int16, most sensitive first (log scale)",
      onPick: (i) => this.chooseCurvePoint(i),
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
          `Output SQNR with only weights quantized: ${dbs(src.weights_only)}; with only activations: ${dbs(src.activations_only)}.`,
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
                { type: "button", class: "link mono", title: s.tensor, onclick: () => this.pickPoint(s.tensor) },
                short(s.tensor, 30),
              ),
              ` ${s.output_sqnr_db === null ? "\u221e" : s.output_sqnr_db.toFixed(1)} dB`,
              s.with_weights
                ? h("span", {
                    class: "muted",
                    text: ` (${s.with_weights.output_sqnr_db === null ? "\u221e" : s.with_weights.output_sqnr_db.toFixed(1)} with its weights)`,
                  })
                : null,
            ),
          ),
        ),
        scope
          ? h("p", {
              class: "muted",
              text: `${scope.measured} of ${scope.points} points measured on ${scope.samples} sample(s), ${CONFIG_LABELS[scope.config] || scope.config}${scope.pruning ? `; ${scope.pruning}` : ""}.`,
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
      const final = await followJob(id, (st) => { Object.assign(this.measureJob, st); this.renderProgress(); });
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

  // -- sidebar: node and tensor sections -----------------------------------------------------------
  renderNodeSection(el, id) {
    const node = this.app.model.node(id);
    if (!node) return;
    const report = this.result.report;
    let tensors = node.outputs.filter((t) => t && report.tensors[t]);
    // a node inside a fused layer (a Conv before its BN and activation) shows its layer's output
    if (!tensors.length)
      tensors = Object.keys(report.tensors).filter((t) => (report.tensors[t].layer || []).includes(id));
    const weights = this.weightsOfNode(id);
    if (!tensors.length && !weights.length) {
      el.append(
        h(
          "section",
          { class: "qsection" },
          h("h3", { text: "Quantization" }),
          h("p", { class: "muted", text: "No float output of this node is quantized." }),
        ),
      );
      return;
    }
    const section = h("section", { class: "qsection", id: "q-section" }, h("h3", { text: "Quantization" }));
    const anchor = el.querySelector(":scope > .row");
    if (anchor) anchor.after(section); else el.append(section);
    if (tensors.length) this.activationView(section, tensors);
    for (const w of weights) this.weightView(section, w);
  }

  renderTensorSection(el, name) {
    const report = this.result.report;
    if (report.tensors[name]) {
      const section = h("section", { class: "qsection", id: "q-section" }, h("h3", { text: "Quantization" }));
      const anchor = el.querySelector(":scope > .kv");
      if (anchor) anchor.after(section); else el.append(section);
      this.activationView(section, [name]);
    } else if (report.weights?.[name]) {
      const section = h("section", { class: "qsection", id: "q-section" }, h("h3", { text: "Quantization" }));
      el.append(section);
      this.weightView(section, name);
    }
  }

  activationView(section, tensors) {
    let current = tensors[0];
    const picker =
      tensors.length > 1
        ? h(
            "select",
            { id: "q-tensor-pick" },
            tensors.map((t) => h("option", { value: t }, t)),
          )
        : null;
    const log = h("input", { type: "checkbox", id: "q-log", checked: this.log });
    const chart = h("div", { id: "q-histogram", class: "qchart-box" });
    const bars = h("div", { id: "q-sqnr" });
    const facts = h("div", { id: "q-facts" });
    const draw = () => {
      const entry = this.result.report.tensors[current];
      clear(facts).append(this.tensorFacts(current, entry));
      clear(bars).append(this.sqnrBars(entry));
      clear(chart).append(h("span", { class: "muted", text: "histogram\u2026" }));
      this.histogram(current)
        .then((hist) => {
          if (!chart.isConnected) return;
          clear(chart).append(
            hist.counts.length
              ? clipHistogram(hist, this.rangesShown(entry), { log: this.log, label: current })
              : h("span", { class: "muted", text: "no finite values" }),
          );
          chart.dataset.tensor = current;
        })
        .catch((err) => {
          if (chart.isConnected) clear(chart).append(h("span", { class: "pill bad", text: errorMessage(err) }));
        });
    };
    log.addEventListener("change", () => { this.log = log.checked; draw(); });
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

  histogram(name) {
    if (!this.histograms.has(name)) {
      const p = quantApi.histogram(this.app.sid, this.result.job, name).then((res) => res.histogram || res);
      p.catch(() => this.histograms.delete(name));
      this.histograms.set(name, p);
    }
    return this.histograms.get(name);
  }

  tensorFacts(name, entry) {
    const rows = this.algorithms
      .filter((a) => entry.ranges?.[a])
      .map((a) =>
        h(
          "div",
          { class: "range-row", "data-algorithm": a },
          h("span", {
            class: "swatch",
            style: `border-color:${ALGORITHM_STYLES[a].color};border-style:${ALGORITHM_STYLES[a].dash ? "dashed" : "solid"}`,
          }),
          h("span", { text: ALGORITHM_LABELS[a] }),
          h("span", { class: "mono", text: `[${fmt(entry.ranges[a][0])}, ${fmt(entry.ranges[a][1])}]` }),
        ),
      );
    const prec = this.precisionToggle(name, (this.result.report.recommendation?.int16 || []).includes(name));
    return h("div", {}, h("div", { class: "ranges" }, rows), this.errorFacts(name),
      h("div", { class: "row" }, h("span", { class: "muted", text: "precision in your hybrid" }), prec,
        entry.nonfinite ? h("span", { class: "pill bad", text: `${entry.nonfinite} non-finite values` }) : null));
  }

  // where this point's error is born, as the table's columns say it (nothing for an older report)
  errorFacts(name) {
    const report = this.result.report;
    const show = (v) => (v === Infinity ? "\u221e" : v === null || v === undefined ? "\u2013" : v.toFixed(1));
    const acc = report.accumulated?.[name], local = report.local?.[name], sens = sensitivityOf(report).get(name);
    const parts = [
      acc
        ? `accumulated cosine ${acc.cosine === null ? "\u2013" : acc.cosine.toFixed(4)}, ${show(errorDb(acc))} dB`
        : null,
      local ? `local ${show(errorDb(local))} dB` : null,
      sens
        ? `outputs at ${show(sens.db)} dB with only this point quantized (#${sens.rank} of ${report.sensitivity.length})`
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

  sqnrBars(entry) {
    const q = this.qtype;
    const rows = this.algorithms.map((a) => ({ label: ALGORITHM_LABELS[a], values: [
      { key: q, value: tensorSqnr(entry, `${q}/${a}`), color: "#d97706" },
      { key: "int16", value: tensorSqnr(entry, `int16/${a}`), color: "#2f5fb3" }] }));
    return h("div", {}, h("div", { class: "muted", text: "SQNR of this tensor per clip range (higher is better)" }),
      groupedBars(rows, { width: 336, unit: "dB", keyLabels: { [q]: q, int16: "int16" }, cls: "tensor-sqnr" }));
  }

  weightView(section, name) {
    const w = this.result.report.weights[name];
    const box = h("div", { class: "weight-view", "data-weight": name });
    box.append(
      h("h4", {}, "Weight ", h("span", { class: "mono", text: name })),
      h("div", {
        class: "muted",
        text: `[${shapeText(w.shape)}], channel axis ${w.channel_axis ?? "none"}, max|w|/std ${w.outlier_ratio === null ? "\u2013" : w.outlier_ratio.toFixed(1)}`,
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
      .weightView(this.app.sid, name, w.channel_axis)
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

  // -- the readiness summary's line ----------------------------------------------------------------
  readinessSummary() {
    if (!this.result) {
      if (this.job && !TERMINAL.includes(this.job.state))
        return {
          status: "todo",
          text: `Quantization analysis running (${Math.round((this.job.progress || 0) * 100)} %)`,
        };
      return null;
    }
    const report = this.result.report;
    const q = this.qtype;
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
            () => this.goTo({ name: worst.name, node: this.producerOf(worst.name) }),
          ],
        ]
      : [];
    // the verdict decides the colour: never green unless a measured configuration meets the absolute thresholds
    const verdict = report.verdict || {};
    const key = verdict.hybrid ? "hybrid" : Object.keys(verdict)[0];
    const judged = key ? verdict[key] : null;
    const grades = Object.entries(verdict).map(([k, v]) => `${CONFIG_LABELS[k] || k} ${v.grade}`).join(", ");
    const text =
      `Quantization analysed (v${this.result.version})${grades ? `: ${grades}` : ": not measured end to end"}` +
      `${rec ? `; hybrid with ${rec.int16.length} int16 layer(s)` : ""}; worst ${q} tensor`;
    return { status: judged ? GRADE_STATUS[judged.grade] : "todo", text, links };
  }
}

const GRADE_STATUS = { good: "good", marginal: "warn", poor: "bad" };

// A configuration's verdict as a pill: its grade, its worst output's cosine and SQNR.
function gradePill(judged) {
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
function verdictLine(verdict) {
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
      text: `Verdict on the measured outputs, worst output first: good with cosine \u2265 ${t.good_cosine} and SQNR \u2265 ${t.good_sqnr_db} dB, marginal with cosine \u2265 ${t.marginal_cosine}, else poor.`,
    }),
  );
}

function short(name, n = 28) { return name.length > n ? `${name.slice(0, n - 1)}\u2026` : name; }

// the verdict's cosine thresholds: below marginal red, below good amber
function cosineTint(v, t) {
  if (v < t.marginal_cosine) return "#fde2e1";
  if (v < t.good_cosine) return "#fff1d6";
  return "";
}

// the verdict's absolute thresholds (the defaults of the analysis when the report has no verdict)
function thresholdsOf(report) {
  return (
    Object.values(report.verdict || {})[0]?.thresholds || { good_cosine: 0.99, good_sqnr_db: 20, marginal_cosine: 0.95 }
  );
}

function sqnrTint(db) {
  if (db < 20) return "#fde2e1";
  if (db < 30) return "#fff1d6";
  if (db < 40) return "#fbfbe3";
  return "";
}
