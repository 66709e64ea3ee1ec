// Dialogs about the model's tensors: add a model input (dtypes from the server's vocabulary) or
// output, set an input's shape, rewire a node's input; and the tensor-name list their fields offer.
import { openDialog, promptText } from "../../core/dialog.js";
import { h, shapeText } from "../../core/dom.js";
import { vocabulary } from "../../core/vocabulary.js";
import { parseShape } from "../../graph/model.js";

// A <datalist> of the scope's tensor names (the first 5000) for the dialogs' tensor fields.
export function tensorDatalist(editor, id) {
  return h("datalist", { id }, editor.model.tensorNames().slice(0, 5000).map((t) => h("option", { value: t })));
}

export function rewireDialog(editor, id, index, current) {
  const list = tensorDatalist(editor, "tensor-names");
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
      editor.applyOrThrow(
        [{ op: "set_node_input", node: editor.ref(id), index, tensor: input.value.trim() }],
        `input ${index} of ${id} rewired`,
      ),
  });
}

export function addInputDialog(editor) {
  const name = h("input", { type: "text", id: "input-name", style: "width:100%" });
  const dtype = h("select", { id: "input-dtype" }, vocabulary().dtypes.map((d) => h("option", { value: d }, d)));
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
      editor.applyOrThrow(
        [{ op: "add_input", name: name.value.trim(), dtype: dtype.value, shape: parseShape(shape.value) }],
        `input ${name.value.trim()} added`,
      ),
  });
}

export function addOutputDialog(editor) {
  const list = tensorDatalist(editor, "tensor-names");
  const input = h("input", { type: "text", list: "tensor-names", style: "width:100%", id: "output-tensor" });
  return openDialog({
    title: "Add model output",
    body: h("div", {}, h("div", { class: "kv" }, h("span", { class: "k", text: "tensor" }), input), list),
    onSubmit: () =>
      editor.applyOrThrow(
        [{ op: "add_output", tensor: input.value.trim() }],
        `${input.value.trim()} is a model output`,
      ),
  });
}

export function setShapeDialog(editor, name) {
  const t = editor.model.tensor(name);
  return promptText(`Shape of input ${name}`, "shape", shapeText(t?.shape).replace(/\u00d7/g, "x"), async (text) => {
    await editor.applyOrThrow([{ op: "set_shape", tensor: name, shape: parseShape(text) }], `shape of ${name} set`);
  });
}
