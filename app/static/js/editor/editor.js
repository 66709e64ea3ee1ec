// The editor of one session: loads the server's graph view and layout, keeps selection and panels,
// and turns every user action into a REST call. After each answer the page reads what changed since
// the version it shows (graph and layout deltas; unchanged boxes stay where they were), or the whole
// view and layout when the server cannot tell, so the page never shows a model the server does not hold.
import { api, download, saveBlob } from "./api.js";
import { applyGraphDelta, DrawingState } from "./delta.js";
import { GraphView } from "./render.js";
import { GraphModel, NO_HITS, scopeGraph, parseShape, describeEdit, sameCut } from "./model.js";
import { renderModel, renderNode, renderTensor, renderMulti } from "./sidebar.js";
import { openDialog, promptText, closeDialog, dialogOpen } from "./dialogs.js";
import { bindKeys } from "./keyboard.js";
import { h, clear, shapeText } from "./dom.js";
import { toast, errorMessage } from "./toast.js";

const DTYPES = [
  "float32",
  "float16",
  "bfloat16",
  "float64",
  "int8",
  "uint8",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "uint64",
  "bool",
  "string",
];

class Editor {
  constructor(sid) {
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
      onContext: (hit, e) => this.onContext(hit, e),
      onFrame: (v) => this.showStatus(v),
    });
    this.bindToolbar();
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
    this.renderScopeBar();
    // keep what was selected if it still exists
    const nodes = this.selection.nodes.filter((id) => this.model.node(id));
    const tensor = this.selection.tensor && this.model.tensor(this.selection.tensor) ? this.selection.tensor : null;
    this.setSelection(nodes, tensor);
    this.applyMarks();
    if (!document.getElementById("history-panel").hidden) this.refreshHistory();
    if (!document.getElementById("shapes-panel").hidden) this.refreshShapes();
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

  deleteNodes(ids, descendants) {
    if (!ids.length) return;
    let doomed = ids;
    if (descendants) {
      // a node below another selected one goes with it: delete only the topmost ones
      const below = new Set();
      for (const id of ids) for (const d of this.model.downstreamOfNodes([id])) if (d !== id) below.add(d);
      doomed = ids.filter((id) => !below.has(id));
    }
    // readers before producers, so that a selected chain can go in one request
    doomed = [...doomed].sort((a, b) => (this.model.node(b)?.pos ?? 0) - (this.model.node(a)?.pos ?? 0));
    const edits = doomed.map((id) => ({ op: "delete_node", node: this.ref(id), descendants }));
    this.selection = { nodes: [], tensor: null };
    return this.apply(
      edits,
      `${ids.length === 1 ? ids[0] : `${ids.length} nodes`} deleted${descendants ? " with descendants" : ""}`,
    );
  }

  deleteReconnect(id) {
    this.selection = { nodes: [], tensor: null };
    return this.apply(
      [{ op: "delete_node", node: this.ref(id), reconnect: true }],
      `${id} deleted, readers reconnected`,
    );
  }

  renameTensor(name) {
    return promptText(`Rename tensor`, "new name", name, async (to) => {
      if (!to || to === name) return;
      await this.applyOrThrow([{ op: "rename_tensor", tensor: name, to }], `tensor renamed to ${to}`, {
        select: { tensor: to },
      });
    });
  }

  cutAt(name) {
    const edit = this.model.cutEdit(name);
    this.selection = { nodes: [], tensor: name };
    return this.apply([edit], `cut at ${name}`);
  }

  // A <datalist> of the scope's tensor names (the first 5000) for the dialogs' tensor fields.
  tensorDatalist(id) {
    return h("datalist", { id }, this.model.tensorNames().slice(0, 5000).map((t) => h("option", { value: t })));
  }

  rewire(id, index, current) {
    const list = this.tensorDatalist("tensor-names");
    const input = h("input", {
      type: "text",
      value: current,
      list: "tensor-names",
      style: "width:100%",
      id: "rewire-tensor",
    });
    return openDialog({
      title: `Input ${index} of ${id}`,
      body: h(
        "div",
        {},
        h("div", { class: "kv" }, h("span", { class: "k", text: "read tensor" }), input),
        list,
        h("p", { class: "muted", text: "An empty name leaves an optional input unset." }),
      ),
      onSubmit: () =>
        this.applyOrThrow(
          [{ op: "set_node_input", node: this.ref(id), index, tensor: input.value.trim() }],
          `input ${index} of ${id} rewired`,
        ),
    });
  }

  async replaceInitializer(name, file) {
    this.busy(true);
    try {
      const res = await api.putTensor(this.sid, name, file, this.version);
      await this.refresh();
      toast(`${name} replaced (v${res.version})`, "ok", 3000);
    } catch (err) {
      this.error(err);
    } finally {
      this.busy(false);
    }
  }

  downloadTensor(name) {
    download(api.tensorUrl(this.sid, name), `${name.replace(/[/\\]/g, "_")}.npy`).catch((err) => this.error(err));
  }

  async downloadScript() {
    try {
      const script = await api.script(this.sid);
      saveBlob(new Blob([JSON.stringify(script, null, 2)], { type: "application/json" }), "edits.json");
    } catch (err) {
      this.error(err);
    }
  }

  applyScriptFile() {
    const input = document.getElementById("hidden-file");
    input.accept = ".json,application/json";
    input.onchange = async () => {
      const file = input.files[0];
      input.value = "";
      if (!file) return;
      let data;
      try {
        data = JSON.parse(await file.text());
      } catch (err) {
        this.error(`${file.name} is not JSON: ${err.message}`);
        return;
      }
      const edits = Array.isArray(data) ? data : data && data.edits;
      if (!Array.isArray(edits) || (data.format && data.format !== "onnx-workbench/edits")) {
        this.error(`${file.name} is not an edit script ({"format": "onnx-workbench/edits", "edits": [...]})`);
        return;
      }
      await this.apply(edits, `${edits.length} edit(s) from ${file.name} applied`);
    };
    input.click();
  }

  pickForExtract(name, side) {
    const list = this.extractPicks[side];
    if (!list.includes(name)) list.push(name);
    this.extractDialog();
  }

  // -- dialogs -------------------------------------------------------------------------------
  async addNodeDialog(fromTensor = "") {
    if (this.inBody) { this.error("Nodes are added to the main graph; go back to it first."); return; }
    let ops;
    try {
      ops = (await api.operators(this.sid)).operators;
    } catch (err) { this.error(err); return; }
    const byKey = new Map(ops.map((o) => [`${o.op_type}${o.domain ? ` (${o.domain})` : ""}`, o]));
    const opList = h("datalist", { id: "op-list" }, [...byKey.keys()].map((k) => h("option", { value: k })));
    const tensorList = this.tensorDatalist("tensor-list");
    const opInput = h("input", {
      type: "text",
      list: "op-list",
      id: "add-op",
      placeholder: "e.g. Relu",
      style: "width:100%",
    });
    const nameInput = h("input", { type: "text", id: "add-name", placeholder: "(automatic)", style: "width:100%" });
    const fields = h("div", {});
    let current = null;
    const fill = () => {
      const op = byKey.get(opInput.value.trim()) || [...byKey.values()].find((o) => o.op_type === opInput.value.trim());
      if (op === current) return;
      current = op;
      clear(fields);
      if (!op) return;
      const rows = [];
      op.inputs.forEach((inp, i) => {
        const value = i === 0 ? fromTensor : "";
        rows.push(
          h("span", {
            class: "k",
            text: `input ${inp.name}${inp.optional ? " (optional)" : ""}${inp.variadic ? " (list, comma separated)" : ""}`,
          }),
          h("input", {
            type: "text",
            list: "tensor-list",
            value,
            "data-input": i,
            "data-variadic": inp.variadic ? "1" : "",
          }),
        );
      });
      const outCount = Math.max(1, op.min_output || 1);
      for (let i = 0; i < outCount; i++) {
        const base = `${op.op_type.toLowerCase()}_out${i ? i : ""}`;
        let name = base, n = 1;
        while (this.model.tensor(name)) name = `${base}_${n++}`;
        rows.push(
          h("span", { class: "k", text: `output ${op.outputs[i]?.name || i}` }),
          h("input", { type: "text", value: name, "data-output": i }),
        );
      }
      for (const a of op.attributes) {
        if (!["int", "float", "string", "ints", "floats", "strings"].includes(a.type)) continue;
        rows.push(
          h("span", { class: "k", text: `${a.name} (${a.type})${a.required ? " *" : ""}` }),
          h("input", {
            type: a.type === "int" || a.type === "float" ? "number" : "text",
            step: a.type === "int" ? "1" : "any",
            "data-attr": a.name,
            "data-type": a.type,
            placeholder: a.type.endsWith("s") ? "comma separated" : "default",
          }),
        );
      }
      fields.append(h("div", { class: "kv" }, rows));
    };
    opInput.addEventListener("input", fill);
    return openDialog({
      title: "Add node",
      wide: true,
      body: h(
        "div",
        {},
        opList,
        tensorList,
        h(
          "div",
          { class: "kv" },
          h("span", { class: "k", text: "operator" }),
          opInput,
          h("span", { class: "k", text: "node name" }),
          nameInput,
        ),
        h("h3", { text: "Inputs, outputs and attributes" }),
        fields,
        h("p", { class: "muted", text: `Operators of this model's opsets: ${ops.length}.` }),
      ),
      submitLabel: "Add node",
      onSubmit: async () => {
        if (!current) throw new Error("choose an operator from the list");
        let inputs = [];
        fields.querySelectorAll("[data-input]").forEach((el) => {
          const v = el.value.trim();
          if (el.dataset.variadic)
            inputs.push(
              ...v
                .split(",")
                .map((s) => s.trim())
                .filter(Boolean),
            );
          else inputs.push(v);
        });
        while (inputs.length && inputs[inputs.length - 1] === "") inputs.pop();
        const outputs = [...fields.querySelectorAll("[data-output]")].map((el) => el.value.trim());
        const attributes = {};
        fields.querySelectorAll("[data-attr]").forEach((el) => {
          const v = el.value.trim();
          if (v === "") return;
          const t = el.dataset.type;
          if (t === "int" || t === "float") attributes[el.dataset.attr] = Number(v);
          else if (t === "string") attributes[el.dataset.attr] = v;
          else {
            const items = v
              .split(",")
              .map((s) => s.trim())
              .filter(Boolean);
            attributes[el.dataset.attr] = t === "strings" ? items : items.map(Number);
          }
        });
        const edit = { op: "add_node", op_type: current.op_type, domain: current.domain, inputs, outputs, attributes };
        if (nameInput.value.trim()) edit.name = nameInput.value.trim();
        const select = edit.name ? { node: edit.name } : { tensor: outputs[0] };
        await this.applyOrThrow([edit], `${current.op_type} added`, { select });
      },
    });
  }

  addInputDialog() {
    const name = h("input", { type: "text", id: "input-name", style: "width:100%" });
    const dtype = h("select", { id: "input-dtype" }, DTYPES.map((d) => h("option", { value: d }, d)));
    const shape = h("input", {
      type: "text",
      id: "input-shape",
      placeholder: "e.g. 1x3x224x224 or N,3,?,?",
      style: "width:100%",
    });
    return openDialog({
      title: "Add model input",
      body: h(
        "div",
        { class: "kv" },
        h("span", { class: "k", text: "name" }),
        name,
        h("span", { class: "k", text: "dtype" }),
        dtype,
        h("span", { class: "k", text: "shape" }),
        shape,
      ),
      onSubmit: () =>
        this.applyOrThrow(
          [{ op: "add_input", name: name.value.trim(), dtype: dtype.value, shape: parseShape(shape.value) }],
          `input ${name.value.trim()} added`,
        ),
    });
  }

  addOutputDialog() {
    const list = this.tensorDatalist("tensor-names");
    const input = h("input", { type: "text", list: "tensor-names", style: "width:100%", id: "output-tensor" });
    return openDialog({
      title: "Add model output",
      body: h("div", {}, h("div", { class: "kv" }, h("span", { class: "k", text: "tensor" }), input), list),
      onSubmit: () =>
        this.applyOrThrow(
          [{ op: "add_output", tensor: input.value.trim() }],
          `${input.value.trim()} is a model output`,
        ),
    });
  }

  setShapeDialog(name) {
    const t = this.model.tensor(name);
    return promptText(`Shape of input ${name}`, "shape", shapeText(t?.shape).replace(/\u00d7/g, "x"), async (text) => {
      await this.applyOrThrow([{ op: "set_shape", tensor: name, shape: parseShape(text) }], `shape of ${name} set`);
    });
  }

  dimsDialog() {
    if (this.inBody) { this.error("Dims are fixed on the main graph; go back to it first."); return; }
    const main = new GraphModel(this.view.graph);
    const { inputDims, otherDims } = main.dimsByOrigin();
    const dimRow = ([dim, users]) =>
      h(
        "tr",
        {},
        h("td", { class: "mono", text: dim }),
        h(
          "td",
          {},
          h("input", {
            type: "number",
            min: "1",
            step: "1",
            "data-dim": dim,
            style: "width:90px",
            placeholder: "size",
          }),
        ),
        h(
          "td",
          { class: "muted" },
          `${users.length} tensor(s): `,
          h("span", { class: "mono", text: users.slice(0, 4).join(", ") + (users.length > 4 ? ", \u2026" : "") }),
        ),
      );
    const header = () =>
      h("tr", {}, h("th", { text: "named dim" }), h("th", { text: "value" }), h("th", { text: "used by" }));
    const inputRows = main.graph.inputs.map((name) => {
      const shape = shapeText(main.tensor(name)?.shape).replace(/\u00d7/g, "x");
      return h(
        "tr",
        {},
        h("td", { class: "mono", text: name }),
        h(
          "td",
          {},
          h("input", { type: "text", value: shape, "data-input": name, "data-initial": shape, style: "width:200px" }),
        ),
      );
    });
    const others = otherDims.length
      ? h(
          "details",
          { id: "dims-others" },
          h("summary", {
            text: `show all: ${otherDims.length} more dim(s) derived inside the graph (they follow from the input dims)`,
          }),
          h("table", {}, header(), otherDims.map(dimRow)),
        )
      : null;
    return openDialog({
      title: "Fix dims and input shapes",
      wide: true,
      body: h(
        "div",
        {},
        h("p", {
          class: "muted",
          text: "Every shape that becomes known is written into the model (graph outputs and value_info) in the same undoable step.",
        }),
        inputDims.length
          ? h("table", { id: "dims-inputs" }, header(), inputDims.map(dimRow))
          : h("p", { class: "muted", text: "The model inputs have no named (symbolic) dims." }),
        others,
        h("h3", { text: "Input shapes (for dims with no name, such as ? or -1)" }),
        h("table", {}, inputRows),
      ),
      submitLabel: "Fix",
      onSubmit: async () => {
        const dims = {};
        const shapes = {};
        const edits = [];
        document.querySelectorAll("#dialog [data-dim]").forEach((el) => {
          if (el.value.trim()) dims[el.dataset.dim] = Number(el.value);
        });
        document.querySelectorAll("#dialog [data-input]").forEach((el) => {
          if (el.value.trim() === el.dataset.initial) return;
          const shape = parseShape(el.value);
          if (shape.every((d) => Number.isInteger(d) && d > 0)) shapes[el.dataset.input] = shape;
          else edits.push({ op: "set_shape", tensor: el.dataset.input, shape });
        });
        if (Object.keys(dims).length || Object.keys(shapes).length) edits.push({ op: "make_static", shapes, dims });
        if (!edits.length) throw new Error("give a value for at least one dim or input shape");
        await this.applyOrThrow(
          edits,
          "dims and shapes fixed; every shape that became known is written into the model",
        );
      },
    });
  }

  extractDialog() {
    const g = this.view.graph;
    const ins = h(
      "textarea",
      { rows: 4, id: "extract-inputs" },
      (this.extractPicks.inputs.length ? this.extractPicks.inputs : g.inputs).join("\n"),
    );
    const outs = h(
      "textarea",
      { rows: 4, id: "extract-outputs" },
      (this.extractPicks.outputs.length ? this.extractPicks.outputs : g.outputs).join("\n"),
    );
    return openDialog({
      title: "Extract the part between tensors",
      body: h(
        "div",
        {},
        h("p", {
          class: "muted",
          text: "One tensor name a line. The result keeps what computes the outputs from the inputs; everything else goes. Pick tensors with 'Extract from/up to here' in a tensor's panel.",
        }),
        h("h3", { text: "Inputs" }),
        ins,
        h("h3", { text: "Outputs" }),
        outs,
      ),
      submitLabel: "Extract",
      onSubmit: async () => {
        const lines = (t) =>
          t.value
            .split("\n")
            .map((s) => s.trim())
            .filter(Boolean);
        await this.applyOrThrow([{ op: "extract", inputs: lines(ins), outputs: lines(outs) }], "extracted");
        this.extractPicks = { inputs: [], outputs: [] };
      },
    });
  }

  convertOpsetDialog() {
    const opset = this.info.summary.opset;
    const current = opset["ai.onnx"] || opset[""] || 13;
    const input = h("input", { type: "number", min: "7", step: "1", value: current, id: "opset-version" });
    return openDialog({
      title: "Convert opset",
      body: h("div", { class: "kv" }, h("span", { class: "k", text: "target opset" }), input),
      submitLabel: "Convert",
      onSubmit: () =>
        this.applyOrThrow([{ op: "convert_opset", version: Number(input.value) }], `converted to opset ${input.value}`),
    });
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
    this.hideMenus();
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
      if (attribute) this.openBody(box.id, attribute, index);
    }
  }

  openBody(id, attribute, index) {
    this.cameras = [...(this.cameras || []).slice(0, this.scope.length / 2), { ...this.graphView.cam }];
    this.scope = [...this.scope, id, index ? `${attribute}:${index}` : attribute];
    this.selection = { nodes: [], tensor: null };
    return this.load();
  }

  // Back to an enclosing graph: the camera is where it was when the body was opened from it.
  async goToScope(depth) {
    const camera = (this.cameras || [])[depth / 2];
    this.scope = this.scope.slice(0, depth);
    this.cameras = (this.cameras || []).slice(0, depth / 2);
    this.selection = { nodes: [], tensor: null };
    const loaded = await this.load();
    if (loaded && camera) {
      this.graphView.cam = camera;
      this.graphView.render();
    }
    return loaded;
  }

  renderScopeBar() {
    const bar = document.getElementById("scope-bar");
    clear(bar);
    bar.hidden = !this.inBody;
    if (!this.inBody) return;
    bar.append(h("button", { type: "button", onclick: () => this.goToScope(this.scope.length - 2) }, "\u2190 Back"),
      h("button", { class: "link", type: "button", onclick: () => this.goToScope(0) }, "main graph"));
    for (let i = 0; i < this.scope.length; i += 2) {
      bar.append(
        " \u203a ",
        h(
          "button",
          { class: "link", type: "button", onclick: () => this.goToScope(i + 2) },
          `${this.scope[i]} . ${this.scope[i + 1]}`,
        ),
      );
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
      `${d.nodes.length} boxes \u00b7 ${v.visibleCount} on screen \u00b7 zoom ${(v.cam.k * 100).toFixed(0)} % \u00b7 ${this.layoutInfo}`;
  }

  // -- panels --------------------------------------------------------------------------------
  togglePanel(which) {
    const panel = document.getElementById(`${which}-panel`);
    panel.hidden = !panel.hidden;
    document.getElementById(`btn-${which}`).classList.toggle("on", !panel.hidden);
    const left = document.getElementById("left-panel");
    left.hidden = document.getElementById("history-panel").hidden && document.getElementById("shapes-panel").hidden;
    if (!panel.hidden) (which === "history" ? this.refreshHistory() : this.refreshShapes());
    else this.applyMarks();
  }

  async refreshHistory() {
    const list = document.getElementById("history-list");
    try {
      const hist = await api.history(this.sid);
      clear(list);
      if (!hist.done.length && !hist.undone.length) list.append(h("li", { class: "muted", text: "no edits yet" }));
      hist.done.forEach((e, i) =>
        list.append(h("li", { class: i === hist.done.length - 1 ? "current" : "", text: describeEdit(e) })),
      );
      for (const e of hist.undone)
        list.append(h("li", { class: "undone", text: describeEdit(e), title: "undone: Redo applies it again" }));
    } catch (err) {
      this.error(err);
    }
  }

  async refreshShapes() {
    const body = document.getElementById("shapes-body");
    if (this.inBody) {
      clear(body).append(h("p", { class: "muted", text: "The report is about the main graph." }));
      return;
    }
    const version = this.version;
    clear(body).append(h("p", { class: "muted", text: "computing\u2026" }));
    let report;
    try {
      report = await api.shapes(this.sid);
    } catch (err) {
      clear(body).append(h("p", { class: "pill bad", text: errorMessage(err) }));
      return;
    }
    if (version !== this.version) return;
    this.shapes = { version, report };
    this.applyMarks();
    clear(body);
    body.append(
      h(
        "p",
        {},
        h("span", { class: `pill ${report.all_static ? "good" : "warn"}`, id: "shapes-summary", text: report.summary }),
      ),
    );
    const dims = Object.entries(report.dynamic_dims);
    if (dims.length) {
      body.append(
        h("h3", { text: "Dynamic input dims" }),
        h(
          "ul",
          { class: "list" },
          dims.map(([d, uses]) =>
            h(
              "li",
              {},
              h("span", { class: "mono", text: d }),
              ": ",
              uses.map((u) => `${u.tensor}[${u.axis}]`).join(", "),
            ),
          ),
        ),
        h("button", { type: "button", onclick: () => this.dimsDialog() }, "Fix dims\u2026"),
      );
    }
    const post = report.post_processing;
    if (report.suggested_cut && !(post && sameCut(report.suggested_cut, post))) {
      body.append(
        h("h3", { text: "Suggested cut" }),
        h("p", { class: "muted", text: `Keep the static part, up to: ${report.suggested_cut.outputs.join(", ")}` }),
        h(
          "button",
          {
            type: "button",
            class: "primary",
            id: "act-suggested-cut",
            onclick: () => this.apply([report.suggested_cut.edit], "cut at the suggested point"),
          },
          "Cut there",
        ),
      );
    }
    if (post) {
      body.append(
        h("h3", { text: "Post-processing" }),
        h("p", {
          class: "muted",
          text: `${post.anchors.map((a) => a.kind).join(", ")} and ${post.nodes.length - post.anchors.length} node(s) of decoding and gathering run on the CPU, not the NPU. Cutting before them keeps: ${post.outputs.join(", ")}`,
        }),
        h(
          "button",
          {
            type: "button",
            class: "primary",
            id: "act-cut-post",
            onclick: () => this.apply([post.edit], "post-processing cut off"),
          },
          "Cut before post-processing",
        ),
      );
    }
    if (report.data_dependent.length) {
      body.append(
        h("h3", { text: `Data-dependent nodes (${report.data_dependent.length})` }),
        h(
          "ul",
          { class: "list" },
          report.data_dependent
            .slice(0, 200)
            .map((d) =>
              h(
                "li",
                {},
                h(
                  "button",
                  { class: "link mono", type: "button", onclick: () => this.selectNode(d.node, true) },
                  d.node,
                ),
                " ",
                h("span", { class: "muted", text: d.reason || "" }),
              ),
            ),
        ),
      );
    }
    const notStatic = Object.entries(report.tensors).filter(([, e]) => e.status !== "static");
    if (notStatic.length) {
      body.append(
        h("h3", { text: `Not static (${notStatic.length}), drawn in orange` }),
        h(
          "ul",
          { class: "list" },
          notStatic
            .slice(0, 300)
            .map(([name, e]) =>
              h(
                "li",
                {},
                h("button", { class: "link mono", type: "button", onclick: () => this.selectTensor(name, true) }, name),
                " ",
                h("span", {
                  class: "muted",
                  text:
                    `${e.status} [${shapeText(e.shape)}]` + (e.declared ? ` (file: [${shapeText(e.declared)}])` : ""),
                }),
              ),
            ),
        ),
      );
    }
    if (report.uninferred.length) {
      body.append(
        h("h3", { text: "Custom ops with unknown output shapes" }),
        h(
          "ul",
          { class: "list" },
          report.uninferred.map((u) => h("li", { class: "mono", text: `${u.node} (${u.domain}.${u.op_type})` })),
        ),
      );
    }
  }

  // -- search --------------------------------------------------------------------------------
  search(text) {
    const box = document.getElementById("search-results");
    clear(box);
    const res = this.model ? this.model.search(text) : NO_HITS;  // typed before the model has loaded
    this.searchMatches = res.nodeIds;
    this.applyMarks();
    if (!text.trim()) { box.hidden = true; return; }
    box.hidden = false;
    if (!res.hits.length) {
      box.append(h("div", { class: "muted", style: "padding:6px 10px", text: "nothing found" }));
      return;
    }
    for (const hit of res.hits) {
      box.append(
        h(
          "button",
          { type: "button", onclick: () => this.goToHit(hit) },
          h("span", { class: "kind", text: hit.detail }),
          hit.label,
        ),
      );
    }
    if (res.total > res.hits.length)
      box.append(h("div", { class: "muted", style: "padding:4px 10px", text: `${res.total - res.hits.length} more` }));
  }

  goToHit(hit) {
    document.getElementById("search-results").hidden = true;
    if (hit.kind === "node") this.selectNode(hit.id, true);
    else this.selectTensor(hit.id, true);
  }

  // -- menus ---------------------------------------------------------------------------------
  onContext(hit, e) {
    const items = [];
    if (hit && hit.type === "node" && this.drawing.nodes[hit.index].kind === "op") {
      const id = this.drawing.nodes[hit.index].id;
      if (!this.selection.nodes.includes(id)) this.setSelection([id], null);
      const ids = this.selection.nodes;
      const box = this.drawing.nodes[hit.index];
      if (ids.length > 1) {
        items.push(
          [`Delete ${ids.length} nodes`, () => this.deleteNodes(ids, false)],
          [`Delete ${ids.length} nodes with descendants`, () => this.deleteNodes(ids, true)],
        );
      } else {
        items.push(
          ["Delete", () => this.deleteNodes([id], false)],
          ["Delete with descendants", () => this.deleteNodes([id], true)],
          ["Delete and reconnect", () => this.deleteReconnect(id)],
          [
            "Rename node\u2026",
            () =>
              promptText("Rename node", "new name", this.model.node(id)?.name || "", (to) =>
                this.applyOrThrow([{ op: "rename_node", node: this.ref(id), to }], `node renamed to ${to}`, {
                  select: { node: to },
                }),
              ),
          ],
        );
        for (const [attr, index] of box.bodies || [])
          items.push([`Open body ${attr}${index ? ":" + index : ""}`, () => this.openBody(id, attr, index)]);
        const out = this.model.node(id)?.outputs.find(Boolean);
        if (out && !this.inBody)
          items.push(
            ["Add node after\u2026", () => this.addNodeDialog(out)],
            ["Cut after this node", () => this.cutAt(out)],
          );
      }
    } else if (hit && (hit.type === "edge" || hit.type === "node")) {
      const tensor = hit.type === "edge" ? hit.tensor : this.drawing.nodes[hit.index].tensor;
      this.selectTensor(tensor);
      if (!this.inBody) {
        items.push(["Rename tensor\u2026", () => this.renameTensor(tensor)], ["Cut here", () => this.cutAt(tensor)]);
        const t = this.model.tensor(tensor);
        if (t && !t.is_output)
          items.push([
            "Make model output",
            () => this.apply([{ op: "add_output", tensor }], `${tensor} is a model output`),
          ]);
        items.push(
          ["Extract from here\u2026", () => this.pickForExtract(tensor, "inputs")],
          ["Extract up to here\u2026", () => this.pickForExtract(tensor, "outputs")],
          ["Add node reading it\u2026", () => this.addNodeDialog(tensor)],
        );
      }
    } else {
      items.push(["Fit (F)", () => this.graphView.fit()]);
      if (!this.inBody)
        items.push(["Add node\u2026", () => this.addNodeDialog()], ["Fix dims\u2026", () => this.dimsDialog()]);
    }
    const menu = document.getElementById("context-menu");
    clear(menu);
    for (const [label, action] of items)
      menu.append(
        h(
          "button",
          {
            type: "button",
            onclick: () => {
              this.hideMenus();
              action();
            },
          },
          label,
        ),
      );
    menu.hidden = false;
    menu.style.left = `${Math.min(e.clientX, window.innerWidth - 240)}px`;
    menu.style.top = `${Math.min(e.clientY, window.innerHeight - items.length * 30 - 10)}px`;
  }

  hideMenus() {
    document.getElementById("context-menu").hidden = true;
    document.getElementById("tools-menu").hidden = true;
  }

  escape() {
    if (dialogOpen()) { closeDialog(); return; }
    const results = document.getElementById("search-results");
    if (!results.hidden) { results.hidden = true; return; }
    this.hideMenus();
    this.setSelection([], null);
  }

  bindToolbar() {
    const on = (id, f) => document.getElementById(id).addEventListener("click", f);
    on("btn-undo", () => this.undo());
    on("btn-redo", () => this.redo());
    on("btn-history", () => this.togglePanel("history"));
    on("btn-shapes", () => this.togglePanel("shapes"));
    on("btn-fit", () => this.graphView.fit());
    on("btn-zoom-in", () => this.graphView.zoomAt(1.25));
    on("btn-zoom-out", () => this.graphView.zoomAt(0.8));
    on("btn-script-upload", () => this.applyScriptFile());
    on("btn-tools", (e) => {
      e.stopPropagation();
      const m = document.getElementById("tools-menu");
      m.hidden = !m.hidden;
    });
    const download = document.getElementById("btn-download");
    download.href = api.modelUrl(this.sid);
    download.addEventListener("click", (e) => {
      e.preventDefault();
      window.__lastDownload = api.modelUrl(this.sid);
      downloadModel(this);
    });
    on("btn-script", (e) => { e.preventDefault(); this.downloadScript(); });
    const actions = {
      "add-node": () => this.addNodeDialog(),
      "add-input": () => this.addInputDialog(),
      "add-output": () => this.addOutputDialog(),
      dims: () => this.dimsDialog(),
      extract: () => this.extractDialog(),
      "convert-opset": () => this.convertOpsetDialog(),
      "infer-shapes": () => this.apply([{ op: "infer_shapes" }], "shapes inferred"),
      cleanup: () => this.apply([{ op: "cleanup" }], "cleaned up"),
      fold: () => this.apply([{ op: "fold_constants" }], "constants folded"),
      "constants-to-initializers": () =>
        this.apply(
          [{ op: "constants_to_initializers", min_elements: 2 }],
          "Constant-node weights moved into initializers",
        ),
      "apply-script": () => this.applyScriptFile(),
      relayout: () => this.load({ fullLayout: true, keepCamera: false }),
    };
    document.getElementById("tools-menu").addEventListener("click", (e) => {
      const action = e.target.closest("[data-action]")?.dataset.action;
      if (action && actions[action]) {
        this.hideMenus();
        if (!this.model) return;
        if (this.inBody && action !== "relayout") {
          this.error("Whole-model edits work on the main graph; go back to it first.");
          return;
        }
        actions[action]();
      }
    });
    document.addEventListener("click", (e) => {
      if (!e.target.closest(".menu") && !e.target.closest("#btn-tools")) this.hideMenus();
      if (!e.target.closest(".search")) document.getElementById("search-results").hidden = true;
    });
    const search = document.getElementById("search");
    let timer = null;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.search(search.value), 120);
    });
    search.addEventListener("focus", () => { if (search.value) this.search(search.value); });
    search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        const first = document.querySelector("#search-results button");
        if (first) first.click();
      }
      if (e.key === "Escape") { search.value = ""; this.search(""); search.blur(); }
    });
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

function downloadModel(editor) {
  download(api.modelUrl(editor.sid), "model.onnx").catch((err) => editor.error(err));
}

// the session id comes in a meta tag: the page's Content-Security-Policy allows no inline script
const editor = new Editor(document.querySelector('meta[name="session-id"]').content);
window.editor = editor; // for the end-to-end tests and the console
editor.load();
