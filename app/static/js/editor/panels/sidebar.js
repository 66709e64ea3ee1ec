// The properties sidebar: model, node, tensor, initializer and multi-selection panels. Every change
// made here is an edit sent through the app (app.apply), never a local change of the model.
import { h, clear, shapeText, fmt, bytes } from "../../core/dom.js";
import { histogram } from "./histogram.js";
import { api } from "../../core/api.js";
import { cutAt, deleteNodes, deleteReconnect, downloadTensor, renameTensor, replaceInitializer } from "../actions.js";
import { addNodeDialog } from "../dialogs/add-node.js";
import { dimsDialog } from "../dialogs/dims.js";
import { pickForExtract } from "../dialogs/extract.js";
import { addInputDialog, addOutputDialog, rewireDialog, setShapeDialog } from "../dialogs/io.js";
import { openBody } from "../scope.js";

function kv(rows) {
  return h(
    "div",
    { class: "kv" },
    rows
      .filter(Boolean)
      .flatMap(([k, v]) => [h("span", { class: "k", text: k, title: k }), h("span", { class: "v" }, v)]),
  );
}

function tensorLink(app, name) {
  return h(
    "button",
    { class: "link mono", type: "button", onclick: () => app.selectTensor(name, true), title: name },
    name || "(empty)",
  );
}

function nodeLink(app, id) {
  return h("button", { class: "link mono", type: "button", onclick: () => app.selectNode(id, true), title: id }, id);
}

function tensorMeta(t) {
  if (!t) return "";
  return `${t.dtype || "?"} [${shapeText(t.shape)}]`;
}

// An editor for one attribute, typed by its current JSON value (the server keeps the ONNX type).
function attributeEditor(app, node, name, value) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    if ("graph" in value) {
      const sub = (node.subgraphs || []).find((s) => s.attribute === name);
      return h(
        "span",
        {},
        `graph, ${value.nodes} nodes `,
        sub ? h("button", { type: "button", onclick: () => openBody(app, node.id, name, sub.index) }, "Open") : null,
      );
    }
    const values = value.values !== undefined ? ` = ${JSON.stringify(value.values).slice(0, 80)}` : "";
    return h("span", { class: "mono" }, `${value.dtype}[${shapeText(value.shape)}]${values}`);
  }
  if (Array.isArray(value) && value.some((v) => v && typeof v === "object")) {
    return h("span", { class: "mono" }, `${value.length} tensors/graphs`);
  }
  const isList = Array.isArray(value);
  const input = h("input", {
    type: !isList && typeof value === "number" ? "number" : "text", step: "any", "data-attr": name,
    value: isList ? value.join(", ") : String(value),
  });
  input.addEventListener("change", () => {
    let parsed;
    const text = input.value.trim();
    if (isList) {
      const items = text.replace(/^\[|\]$/g, "").split(",").map((s) => s.trim()).filter((s) => s !== "");
      parsed = items.every((s) => s !== "" && !Number.isNaN(Number(s))) ? items.map(Number) : items;
    } else if (typeof value === "number") {
      parsed = Number(text);
      if (text === "" || Number.isNaN(parsed)) {
        app.error(`'${text}' is not a number`);
        input.value = String(value);
        return;
      }
    } else {
      parsed = text;
    }
    app.apply([{ op: "set_attribute", node: app.ref(node.id), name, value: parsed }], `attribute ${name} set`);
  });
  const remove = h("button", { type: "button", title: `Remove attribute ${name}`, onclick: () =>
    app.apply([{ op: "remove_attribute", node: app.ref(node.id), name }], `attribute ${name} removed`) }, "\u00d7");
  return h("span", { class: "row", style: "margin:0;flex-wrap:nowrap" }, input, remove);
}

export function renderNode(app, el, id) {
  const m = app.model;
  const node = m.node(id);
  clear(el);
  if (!node) { el.append(h("p", { class: "muted", text: "This node is not in the model any more." })); return; }
  const nameInput = h("input", { type: "text", value: node.name, id: "node-name", placeholder: "(unnamed)" });
  nameInput.addEventListener("change", () => {
    const to = nameInput.value.trim();
    if (to && to !== node.name)
      app.apply([{ op: "rename_node", node: app.ref(id), to }], `node renamed to ${to}`, { select: { node: to } });
  });
  el.append(
    h("h2", {}, node.op_type, " ", h("span", { class: "pill", text: node.domain || "ai.onnx" })),
    kv([
      ["name", nameInput],
      ["id", h("span", { class: "mono", text: id })],
      ["op type", node.op_type],
      ["domain", node.domain || "ai.onnx"],
    ]),
    h(
      "div",
      { class: "row" },
      h(
        "button",
        { type: "button", class: "danger", id: "act-delete", onclick: () => deleteNodes(app, [id], false) },
        "Delete",
      ),
      h(
        "button",
        { type: "button", class: "danger", id: "act-delete-desc", onclick: () => deleteNodes(app, [id], true) },
        "Delete with descendants",
      ),
      h("button", { type: "button", onclick: () => deleteReconnect(app, id) }, "Delete, reconnect"),
      (node.subgraphs || []).map((s) =>
        h(
          "button",
          { type: "button", onclick: () => openBody(app, id, s.attribute, s.index) },
          `Open ${s.attribute}${s.index ? ":" + s.index : ""}`,
        ),
      ),
    ),
  );
  const attrs = node.attributes || {};
  el.append(h("h3", { text: "Attributes" }));
  el.append(kv(Object.entries(attrs).map(([k, v]) => [k, attributeEditor(app, node, k, v)])));
  const newName = h("input", { type: "text", placeholder: "name", size: 8 });
  const newValue = h("input", { type: "text", placeholder: "value (JSON or text)" });
  el.append(h("div", { class: "row" }, newName, newValue, h("button", { type: "button", onclick: () => {
    const name = newName.value.trim();
    if (!name) return;
    let value = newValue.value.trim();
    try { value = JSON.parse(value); } catch { /* a plain string */ }
    app.apply([{ op: "set_attribute", node: app.ref(id), name, value }], `attribute ${name} added`);
  } }, "Add")));

  el.append(h("h3", { text: "Inputs" }));
  node.inputs.forEach((name, index) => {
    const t = m.tensor(name);
    const init = m.initializer(name);
    el.append(
      h(
        "div",
        { class: "io" },
        h(
          "div",
          { class: "name" },
          `${index}: `,
          name ? tensorLink(app, name) : h("span", { class: "muted", text: "(optional, empty)" }),
        ),
        h("div", {
          class: "meta",
          text: init ? `initializer ${init.dtype} [${shapeText(init.shape)}]` : tensorMeta(t),
        }),
        app.inBody
          ? null
          : h(
              "div",
              { class: "acts" },
              h("button", { type: "button", onclick: () => rewireDialog(app, id, index, name) }, "Rewire\u2026"),
            ),
      ),
    );
  });
  if (!app.inBody) {
    el.append(
      h(
        "div",
        { class: "row" },
        h("button", { type: "button", onclick: () => rewireDialog(app, id, node.inputs.length, "") },
          "Add input\u2026"),
      ),
    );
  }
  el.append(h("h3", { text: "Outputs" }));
  node.outputs.forEach((name) => {
    const t = m.tensor(name);
    el.append(
      h(
        "div",
        { class: "io" },
        h("div", { class: "name" }, name ? tensorLink(app, name) : "(unused)"),
        h("div", { class: "meta", text: `${tensorMeta(t)}${t ? ` \u2192 ${t.consumers.length} reader(s)` : ""}` }),
        app.inBody || !name
          ? null
          : h(
              "div",
              { class: "acts" },
              h("button", { type: "button", onclick: () => renameTensor(app, name) }, "Rename\u2026"),
              h("button", { type: "button", onclick: () => cutAt(app, name) }, "Cut here"),
              t && !t.is_output
                ? h(
                    "button",
                    {
                      type: "button",
                      onclick: () => app.apply([{ op: "add_output", tensor: name }], `${name} is a model output`),
                    },
                    "Make output",
                  )
                : null,
              h("button", { type: "button", onclick: () => addNodeDialog(app, name) }, "Add node after\u2026"),
            ),
      ),
    );
  });
}

export function renderTensor(app, el, name) {
  const m = app.model;
  const t = m.tensor(name);
  clear(el);
  if (!t) { el.append(h("p", { class: "muted", text: `Tensor '${name}' is not in the model any more.` })); return; }
  const init = m.initializer(name);
  el.append(
    h(
      "h2",
      {},
      init ? "Initializer" : "Tensor",
      " ",
      t.is_input ? h("span", { class: "pill", text: "model input" }) : null,
      " ",
      t.is_output ? h("span", { class: "pill", text: "model output" }) : null,
    ),
  );
  el.append(kv([
    ["name", h("span", { class: "mono", text: name, id: "tensor-name" })],
    ["dtype", t.dtype || "?"],
    ["shape", h("span", { class: "mono", text: shapeText(t.shape), id: "tensor-shape" })],
    ["producer", t.producer ? nodeLink(app, t.producer) : t.is_input ? "model input" : init ? "initializer" : "\u2013"],
  ]));
  el.append(h("h3", { text: `Readers (${t.consumers.length})` }));
  el.append(h("ul", { class: "list" }, t.consumers.slice(0, 200).map((c) => h("li", {}, nodeLink(app, c)))));
  if (!app.inBody) {
    el.append(
      h(
        "div",
        { class: "row" },
        h("button", { type: "button", id: "act-rename-tensor", onclick: () => renameTensor(app, name) },
          "Rename\u2026"),
        !init ? h("button", { type: "button", id: "act-cut", onclick: () => cutAt(app, name) }, "Cut here") : null,
        t.is_output
          ? h(
              "button",
              {
                type: "button",
                onclick: () => app.apply([{ op: "remove_output", name }], `${name} is no longer an output`),
              },
              "Remove output",
            )
          : h(
              "button",
              {
                type: "button",
                onclick: () => app.apply([{ op: "add_output", tensor: name }], `${name} is a model output`),
              },
              "Make output",
            ),
        h("button", { type: "button", onclick: () => pickForExtract(app, name, "inputs") }, "Extract from here"),
        h("button", { type: "button", onclick: () => pickForExtract(app, name, "outputs") }, "Extract up to here"),
        h("button", { type: "button", onclick: () => addNodeDialog(app, name) }, "Add node reading it\u2026"),
      ),
    );
  }
  const heldByConstant = !init && !app.inBody && t.producer && m.node(t.producer)?.op_type === "Constant";
  if (init || heldByConstant) renderInitializer(app, el, name, init);
}

// A weight's values: an initializer's summary comes with the graph view; a Constant node's with its histogram.
function renderInitializer(app, el, name, init) {
  el.append(h("h3", { text: init ? "Values" : "Values (held by a Constant node)" }));
  const info = h("div", {});
  const chart = h("div", { id: "init-histogram" }, h("span", { class: "muted", text: "histogram\u2026" }));
  el.append(info, chart);
  const describe = (summary) => {
    const s = summary.stats;
    clear(info).append(kv([["size", `${bytes(summary.bytes)}${summary.external ? " (external data)" : ""}`]]));
    if (s) {
      info.append(h("div", { class: "stats", id: "init-stats" },
        ["min", "max", "mean", "std"].map((k) => h("div", {}, h("b", { text: k }), fmt(s[k])))));
      if (s.sampled) info.append(h("div", { class: "muted", text: "statistics from a sample of the values" }));
    }
  };
  if (init) describe(init);
  if (init && !init.stats) chart.remove();
  else {
    const version = app.version;
    api
      .histogram(app.sid, name)
      .then((res) => {
        if (app.version !== version || !chart.isConnected) return;
        if (!init) describe(res.summary);
        clear(chart).append(
          res.counts.length
            ? histogram(res.counts, res.edges)
            : h("span", { class: "muted", text: "no finite values" }),
        );
      })
      .catch((err) => {
        if (chart.isConnected) clear(chart).append(h("span", { class: "muted", text: err.message }));
      });
  }
  const file = h("input", { type: "file", accept: ".npy", hidden: true, id: "npy-file" });
  file.addEventListener("change", () => {
    if (file.files[0]) replaceInitializer(app, name, file.files[0]);
    file.value = "";
  });
  el.append(h("div", { class: "row" },
    h("button", { type: "button", id: "act-npy-download", onclick: () => downloadTensor(app, name) }, "Download .npy"),
    h("button", { type: "button", onclick: () => file.click() }, "Replace from .npy\u2026"), file));
}

export function renderMulti(app, el, ids) {
  clear(el);
  el.append(h("h2", { text: `${ids.length} nodes selected` }));
  el.append(
    h(
      "ul",
      { class: "list" },
      ids.map((id) =>
        h("li", {}, nodeLink(app, id), " ", h("span", { class: "muted", text: app.model.node(id)?.op_type || "" })),
      ),
    ),
  );
  el.append(
    h(
      "div",
      { class: "row" },
      h("button", { type: "button", class: "danger", onclick: () => deleteNodes(app, ids, false) }, "Delete all"),
      h(
        "button",
        { type: "button", class: "danger", onclick: () => deleteNodes(app, ids, true) },
        "Delete all with descendants",
      ),
    ),
  );
}

export function renderModel(app, el) {
  if (!app.model) return; // nothing loaded yet (Escape pressed before the first load, or it failed)
  const v = app.view;
  const sum = app.info.summary;
  clear(el);
  el.append(h("h2", { text: app.inBody ? "Subgraph body" : "Model" }));
  el.append(
    kv([
      ["file", app.info.filename || ""],
      ["IR version", String(sum.ir_version)],
      [
        "opsets",
        Object.entries(sum.opset)
          .map(([d, n]) => `${d} ${n}`)
          .join(", "),
      ],
      ["producer", sum.producer || "\u2013"],
      ["nodes", `${sum.nodes} (${sum.nodes_including_subgraphs} with bodies)`],
      [
        "weights",
        `${bytes(sum.weights_bytes)} in ${sum.initializers} initializers${sum.external_data ? ", external data" : ""}`,
      ],
      v.shape_inference && !v.shape_inference.ok
        ? ["shapes", h("span", { class: "pill bad", text: v.shape_inference.message })]
        : null,
    ]),
  );
  const g = app.model.graph;
  // a model input or output: its name, type and shape, and its actions on the main graph
  const io = (name, actions) => h("div", { class: "io" }, h("div", { class: "name" }, tensorLink(app, name)),
    h("div", { class: "meta", text: tensorMeta(app.model.tensor(name)) }),
    app.inBody ? null : h("div", { class: "acts" }, actions()));
  el.append(h("h3", { text: "Inputs" }), ...g.inputs.map((name) => io(name, () => [
    h("button", { type: "button", onclick: () => setShapeDialog(app, name) }, "Set shape\u2026"),
    h("button", { type: "button", onclick: () => app.apply([{ op: "remove_input", name }], `input ${name} removed`) },
      "Remove")])));
  el.append(h("h3", { text: "Outputs" }), ...g.outputs.map((name) => io(name, () => [
    h("button", { type: "button", onclick: () => app.apply([{ op: "remove_output", name }], `output ${name} removed`) },
      "Remove")])));
  if (!app.inBody) {
    el.append(h("div", { class: "row" },
      h("button", { type: "button", onclick: () => addInputDialog(app) }, "Add input\u2026"),
      h("button", { type: "button", onclick: () => addOutputDialog(app) }, "Add output\u2026"),
      h("button", { type: "button", onclick: () => dimsDialog(app) }, "Fix dims\u2026")));
  }
  if (Object.keys(sum.metadata || {}).length) {
    el.append(h("h3", { text: "Metadata" }));
    el.append(kv(Object.entries(sum.metadata).map(([k, val]) => [k, String(val).slice(0, 300)])));
  }
  el.append(
    h(
      "p",
      { class: "muted", style: "margin-top:16px" },
      "Click a node or an edge to see its properties. Right-click for actions; Shift+click selects several " +
        "nodes. Keys: Delete, Ctrl+Z, Ctrl+Shift+Z, Ctrl+F, F (fit), Escape.",
    ),
  );
}
