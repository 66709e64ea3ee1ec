// The "Fix dims and input shapes" dialog: a value for each named dim (those of the model inputs
// first) and the input shapes, sent as one make_static edit (and set_shape for partial shapes).
import { openDialog } from "../../core/dialog.js";
import { h, shapeText } from "../../core/dom.js";
import { GraphModel, parseShape } from "../../graph/model.js";

export function dimsDialog(editor) {
  if (editor.inBody) { editor.error("Dims are fixed on the main graph; go back to it first."); return; }
  const main = new GraphModel(editor.view.graph);
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
        text: "Every shape that becomes known is written into the model (graph outputs and value_info) " +
          "in the same undoable step.",
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
      await editor.applyOrThrow(
        edits,
        "dims and shapes fixed; every shape that became known is written into the model",
      );
    },
  });
}
