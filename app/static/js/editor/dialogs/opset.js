// The "Convert opset" dialog: the target opset of a convert_opset edit.
import { openDialog } from "../../core/dialog.js";
import { h } from "../../core/dom.js";

export function convertOpsetDialog(editor) {
  const opset = editor.info.summary.opset;
  const current = opset["ai.onnx"] || opset[""] || 13;
  const input = h("input", { type: "number", min: "7", step: "1", value: current, id: "opset-version" });
  return openDialog({
    title: "Convert opset",
    body: h("div", { class: "kv" }, h("span", { class: "k", text: "target opset" }), input),
    submitLabel: "Convert",
    onSubmit: () =>
      editor.applyOrThrow([{ op: "convert_opset", version: Number(input.value) }], `converted to opset ${input.value}`),
  });
}
