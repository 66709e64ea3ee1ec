// The "Add node" dialog: an operator of the model's opsets (the server's list), its inputs,
// outputs and attributes as fields, sent as one add_node edit.
import { api } from "../../core/api.js";
import { openDialog } from "../../core/dialog.js";
import { clear, h } from "../../core/dom.js";
import { tensorDatalist } from "./io.js";

export async function addNodeDialog(editor, fromTensor = "") {
  if (editor.inBody) { editor.error("Nodes are added to the main graph; go back to it first."); return; }
  let ops;
  try {
    ops = (await api.operators(editor.sid)).operators;
  } catch (err) { editor.error(err); return; }
  const byKey = new Map(ops.map((o) => [`${o.op_type}${o.domain ? ` (${o.domain})` : ""}`, o]));
  const opList = h("datalist", { id: "op-list" }, [...byKey.keys()].map((k) => h("option", { value: k })));
  const tensorList = tensorDatalist(editor, "tensor-list");
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
          text: `input ${inp.name}${inp.optional ? " (optional)" : ""}` +
            `${inp.variadic ? " (list, comma separated)" : ""}`,
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
      while (editor.model.tensor(name)) name = `${base}_${n++}`;
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
      h("p", { class: "muted", text: `Operators of editor model's opsets: ${ops.length}.` }),
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
      await editor.applyOrThrow([edit], `${current.op_type} added`, { select });
    },
  });
}
