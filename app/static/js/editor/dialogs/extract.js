// The "Extract" dialog: the part of the graph between input and output tensors, which the tensor
// panel and the context menu can pick.
import { openDialog } from "../../core/dialog.js";
import { h } from "../../core/dom.js";

export function extractDialog(editor) {
  const g = editor.view.graph;
  const ins = h(
    "textarea",
    { rows: 4, id: "extract-inputs" },
    (editor.extractPicks.inputs.length ? editor.extractPicks.inputs : g.inputs).join("\n"),
  );
  const outs = h(
    "textarea",
    { rows: 4, id: "extract-outputs" },
    (editor.extractPicks.outputs.length ? editor.extractPicks.outputs : g.outputs).join("\n"),
  );
  return openDialog({
    title: "Extract the part between tensors",
    body: h(
      "div",
      {},
      h("p", {
        class: "muted",
        text: "One tensor name a line. The result keeps what computes the outputs from the inputs; everything " +
          "else goes. Pick tensors with 'Extract from/up to here' in a tensor's panel.",
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
      await editor.applyOrThrow([{ op: "extract", inputs: lines(ins), outputs: lines(outs) }], "extracted");
      editor.extractPicks = { inputs: [], outputs: [] };
    },
  });
}

export function pickForExtract(editor, name, side) {
  const list = editor.extractPicks[side];
  if (!list.includes(name)) list.push(name);
  extractDialog(editor);
}
