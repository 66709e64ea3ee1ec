// The editor of one session: loads the server's graph view and layout, keeps selection and panels,
// and turns every user action into a REST call. After each answer the page reads what changed since
// the version it shows (graph and layout deltas; unchanged boxes stay where they were), or the whole
// view and layout when the server cannot tell, so the page never shows a model the server does not hold.
import { api } from "../core/api.js";
import { applyGraphDelta, DrawingState } from "../graph/delta.js";
import { GraphView } from "../canvas/graph-view.js";
import { GraphModel, scopeGraph, describeEdit } from "../graph/model.js";
import { renderModel, renderNode, renderTensor, renderMulti } from "./panels/sidebar.js";
import { bindKeys } from "./keyboard.js";
import { toast, errorMessage } from "../core/toast.js";
import { hideMenus, openContextMenu } from "./context-menu.js";
import { refreshHistory } from "./panels/history.js";
import { refreshShapes } from "./panels/shapes.js";
import { openBody, renderScopeBar } from "./scope.js";
import { bindToolbar } from "./toolbar.js";

export class Editor {
  // box: the layout's box metrics (core/vocabulary.js), which the canvas draws with
  constructor(sid, box) {
    this.sid = sid;
    this.scope = [];
    this.view = null;
    this.model = null;
    this.version = null;
    this.selection = { nodes: [], tensor: null };
    this.extractPicks = { inputs: [], outputs: [] };
    this.shapes = null;
    this.busyCount = 0;
    this.sidebar = document.getElementById("sidebar");
    this.graphView = new GraphView(document.getElementById("graph"), document.getElementById("minimap"), {
      onClick: (hit, e) => this.onClick(hit, e),
      onDoubleClick: (hit) => this.onDoubleClick(hit),
      onContext: (hit, e) => openContextMenu(this, hit, e),
      onFrame: (v) => this.showStatus(v),
    }, box);
    bindToolbar(this);
    bindKeys(this);
  }

  get inBody() { return this.scope.length > 0; }

  ref(id) {
    const node = this.model.node(id);
    return node && node.ref ? node.ref : id;
  }

  // -- loading -------------------------------------------------------------------------------
  async load({ fullLayout = false, keepCamera = false } = {}) {
    this.busy(true);
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const [info, view, drawing] = await Promise.all([
          api.session(this.sid), api.graph(this.sid), api.layout(this.sid, this.scope, fullLayout)]);
        if (view.version !== drawing.version || info.version !== view.version) continue; // an edit landed in between
        this.install(info, view, drawing, keepCamera);
        return true;
      }
      throw new Error("the session keeps changing; reload the page");
    } catch (err) {
      if (err.code === "unknown_scope" && this.scope.length) {
        this.scope = [];
        toast("That subgraph is gone; showing the main graph.");
        return this.load({ keepCamera: false });
      }
      this.error(
        err,
        err.status === 404 ? "This session does not exist (deleted or expired). Open the model again." : null,
      );
      return false;
    } finally {
      this.busy(false);
    }
  }

  // After an edit, undo or redo: apply what changed since the version shown (main graph), else load.
  async refresh() {
    const since = this.version;
    if (!this.inBody && this.drawingState) {
      try {
        const [info, delta, layout] = await Promise.all([
          api.session(this.sid), api.graphDelta(this.sid, since), api.layoutDelta(this.sid, since)]);
        if (!delta.full && !layout.full && delta.version === layout.version && info.version === delta.version) {
          applyGraphDelta(this.view, delta);
          this.install(info, this.view, this.drawingState.apply(layout, this.view.graph), true, this.drawingState);
          return true;
        }
      } catch {
        // a delta that does not fit what the page holds, or a failed request: load everything below
      }
    }
    return this.load({ keepCamera: true });
  }

  install(info, view, drawing, keepCamera, drawingState = null) {
    this.info = info;
    this.view = view;
    this.version = view.version;
    const graph = scopeGraph(view, this.scope);
    this.model = new GraphModel(graph);
    this.drawing = drawing;
    this.drawingState = drawingState || (this.inBody ? null : new DrawingState(drawing));
    this.graphView.setDrawing(drawing, { keepCamera });
    this.layoutInfo = drawing.incremental ? "kept in place" : "laid out";
    document.getElementById("model-name").textContent = info.filename;
    document.getElementById("version").textContent = `v${view.version}`;
    document.title = `${info.filename} \u2013 onnx-workbench`;
    document.getElementById("btn-undo").disabled = !info.can_undo;
    document.getElementById("btn-redo").disabled = !info.can_redo;
    renderScopeBar(this);
    // keep what was selected if it still exists
    const nodes = this.selection.nodes.filter((id) => this.model.node(id));
    const tensor = this.selection.tensor && this.model.tensor(this.selection.tensor) ? this.selection.tensor : null;
    this.setSelection(nodes, tensor);
    this.applyMarks();
    if (!document.getElementById("history-panel").hidden) refreshHistory(this);
    if (!document.getElementById("shapes-panel").hidden) refreshShapes(this);
    document.body.dataset.version = String(view.version);
    document.dispatchEvent(new CustomEvent("editor:loaded", { detail: this }));
  }

  // -- edits ---------------------------------------------------------------------------------
  async apply(edits, message, { select } = {}) {
    if (!edits.length) return true;
    this.busy(true);
    try {
      await this.applyOrThrow(edits, message, { select });
      return true;
    } catch (err) {
      if (err.code === "version_conflict") {
        toast("The session was changed elsewhere; showing its current state.", "error");
        await this.load({ keepCamera: true });
      } else {
        this.error(err);
      }
      return false;
    } finally {
      this.busy(false);
    }
  }

  // For dialogs: throws, so the dialog shows the server's message and stays open.
  async applyOrThrow(edits, message, options) {
    const res = await api.edits(this.sid, edits, this.version);
    if (options?.select?.node) this.selection = { nodes: [options.select.node], tensor: null };
    if (options?.select?.tensor) this.selection = { nodes: [], tensor: options.select.tensor };
    await this.refresh();
    if (message) toast(`${message} (v${res.version})`, "ok", 3000);
  }

  async undo() { return this.step("undo"); }
  async redo() { return this.step("redo"); }

  async step(which) {
    if (this.busyCount) return;
    this.busy(true);
    try {
      const res = await api[which](this.sid);
      await this.refresh();
      toast(`${which === "undo" ? "Undone" : "Redone"}: ${describeEdit(res.edit)}`, "ok", 3000);
    } catch (err) {
      this.error(err);
    } finally {
      this.busy(false);
    }
  }

  // -- selection and view ----------------------------------------------------------------------
  setSelection(nodes, tensor) {
    this.selection = { nodes, tensor };
    const gv = this.graphView;
    gv.selected = new Set(nodes.map((id) => gv.byId.get(id)).filter((i) => i !== undefined));
    gv.selectedTensor = tensor;
    gv.render();
    if (nodes.length > 1) renderMulti(this, this.sidebar, nodes);
    else if (nodes.length === 1) renderNode(this, this.sidebar, nodes[0]);
    else if (tensor) renderTensor(this, this.sidebar, tensor);
    else renderModel(this, this.sidebar);
    document.dispatchEvent(new CustomEvent("editor:selection", { detail: this })); // panels add their sections
  }

  selectNode(id, center = false) {
    this.setSelection([id], null);
    const i = this.graphView.byId.get(id);
    if (center && i !== undefined) this.graphView.centerOn(i);
  }

  selectTensor(name, center = false) {
    this.setSelection([], name);
    if (!center) return;
    const gv = this.graphView;
    if (gv.edgesByTensor.has(name)) { gv.centerOnTensor(name); return; }
    const t = this.model.tensor(name);
    const box = gv.byId.get(t?.producer) ?? gv.byId.get(`in:${name}`) ?? gv.byId.get(t?.consumers?.[0]);
    if (box !== undefined) gv.centerOn(box);
  }

  onClick(hit, e) {
    hideMenus();
    if (!hit) { this.setSelection([], null); return; }
    if (hit.type === "edge") { this.selectTensor(hit.tensor); return; }
    const box = this.drawing.nodes[hit.index];
    if (box.kind !== "op") { this.selectTensor(box.tensor); return; }
    if (e.shiftKey || e.ctrlKey || e.metaKey) {
      const nodes = this.selection.nodes.includes(box.id)
        ? this.selection.nodes.filter((x) => x !== box.id)
        : [...this.selection.nodes, box.id];
      this.setSelection(nodes, null);
    } else {
      this.setSelection([box.id], null);
    }
  }

  onDoubleClick(hit) {
    if (hit && hit.type === "node") {
      const box = this.drawing.nodes[hit.index];
      // an If opens its then_branch first, whatever the order of its attributes in the file
      const [attribute, index] = (box.bodies || []).find(([a]) => a === "then_branch") || (box.bodies || [])[0] || [];
      if (attribute) openBody(this, box.id, attribute, index);
    }
  }

  applyMarks() {
    const gv = this.graphView;
    gv.markedNodes = new Map();
    gv.markedTensors = new Set();
    if (
      this.shapes &&
      this.shapes.version === this.version &&
      !this.inBody &&
      !document.getElementById("shapes-panel").hidden
    ) {
      for (const [name, entry] of Object.entries(this.shapes.report.tensors))
        if (entry.status !== "static") gv.markedTensors.add(name);
      for (const d of this.shapes.report.data_dependent) {
        const i = gv.byId.get(d.node);
        if (i !== undefined) gv.markedNodes.set(i, "dd");
      }
    }
    if (this.searchMatches) for (const id of this.searchMatches) {
      const i = gv.byId.get(id);
      if (i !== undefined && !gv.markedNodes.has(i)) gv.markedNodes.set(i, "match");
    }
    gv.render();
  }

  showStatus(v) {
    const d = this.drawing;
    if (!d) return;
    document.getElementById("status").textContent =
      `${d.nodes.length} boxes \u00b7 ${v.visibleCount} on screen \u00b7 ` +
      `zoom ${(v.cam.k * 100).toFixed(0)} % \u00b7 ${this.layoutInfo}`;
  }

  // -- feedback ------------------------------------------------------------------------------
  busy(on) {
    this.busyCount += on ? 1 : -1;
    document.getElementById("busy").hidden = this.busyCount <= 0;
  }

  error(err, fallback = null) {
    toast(fallback || errorMessage(err), "error");
  }
}
