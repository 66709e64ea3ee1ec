// The static-shape panel: the server's report (dynamic dims, suggested cut, post-processing,
// data-dependent nodes, tensors that are not static), every item a link into the graph or an action.
import { api } from "../../core/api.js";
import { clear, h, shapeText } from "../../core/dom.js";
import { errorMessage } from "../../core/toast.js";
import { dimsDialog } from "../dialogs/dims.js";
import { sameCut } from "../../graph/model.js";

export async function refreshShapes(editor) {
  const body = document.getElementById("shapes-body");
  if (editor.inBody) {
    clear(body).append(h("p", { class: "muted", text: "The report is about the main graph." }));
    return;
  }
  const version = editor.version;
  clear(body).append(h("p", { class: "muted", text: "computing\u2026" }));
  let report;
  try {
    report = await api.shapes(editor.sid);
  } catch (err) {
    clear(body).append(h("p", { class: "pill bad", text: errorMessage(err) }));
    return;
  }
  if (version !== editor.version) return;
  editor.shapes = { version, report };
  editor.applyMarks();
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
      h("button", { type: "button", onclick: () => dimsDialog(editor) }, "Fix dims\u2026"),
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
          onclick: () => editor.apply([report.suggested_cut.edit], "cut at the suggested point"),
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
        text: `${post.anchors.map((a) => a.kind).join(", ")} and ${post.nodes.length - post.anchors.length} ` +
          "node(s) of decoding and gathering run on the CPU, not the NPU. " +
          `Cutting before them keeps: ${post.outputs.join(", ")}`,
      }),
      h(
        "button",
        {
          type: "button",
          class: "primary",
          id: "act-cut-post",
          onclick: () => editor.apply([post.edit], "post-processing cut off"),
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
                { class: "link mono", type: "button", onclick: () => editor.selectNode(d.node, true) },
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
              h("button", { class: "link mono", type: "button", onclick: () => editor.selectTensor(name, true) }, name),
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
