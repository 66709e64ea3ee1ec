// NPU-readiness summary, shown in the model panel when a model opens: static shapes or not, the
// dynamic dims, data-dependent nodes, the suggested cut, custom ops without shapes and whether the
// quantization analysis has run. Every item links to its place in the graph (or the dialog that
// fixes it). The static-shape report is read once per session version.
import { api } from "../../core/api.js";
import { h, clear, shapeText } from "../../core/dom.js";
import { errorMessage } from "../../core/toast.js";
import { sameCut } from "../../graph/model.js";
import { dimsDialog } from "../dialogs/dims.js";
import { togglePanel } from "./left-panel.js";

const cache = new Map(); // "sid@version" -> Promise of the shapes report

function shapesAt(app) {
  const key = `${app.sid}@${app.version}`;
  if (!cache.has(key)) {
    cache.clear();
    cache.set(key, api.shapes(app.sid));
  }
  return cache.get(key);
}

function item(status, label, ...rest) {
  return h(
    "li",
    { class: `ready-item ${status}` },
    h("span", { class: `dot ${status}`, "aria-hidden": "true" }),
    h("span", { class: "what" }, label, ...rest),
  );
}

function link(text, onclick, attrs = {}) {
  return h("button", { type: "button", class: "link mono", onclick, ...attrs }, text);
}

export function renderReadiness(app, host) {
  const box = h("section", { class: "readiness", id: "readiness" }, h("h3", { text: "NPU readiness" }),
    h("p", { class: "muted", text: "checking\u2026" }));
  host.append(box);
  if (app.inBody) {
    clear(box).append(h("p", { class: "muted", text: "The summary is about the main graph." }));
    return box;
  }
  const version = app.version;
  shapesAt(app).then((report) => {
    if (!box.isConnected || app.version !== version) return;
    fill(app, box, report);
  }).catch((err) => {
    if (box.isConnected)
      clear(box).append(h("h3", { text: "NPU readiness" }), h("p", { class: "pill bad", text: errorMessage(err) }));
  });
  return box;
}

function fill(app, box, report) {
  clear(box);
  box.append(h("h3", { text: "NPU readiness" }));
  const list = h("ul", { class: "ready-list" });
  // static shapes
  const openShapes = () => { if (document.getElementById("shapes-panel").hidden) togglePanel(app, "shapes"); };
  list.append(
    item(
      report.all_static ? "good" : "warn",
      report.all_static ? "Static shapes: " : "Not static: ",
      link(report.summary, openShapes, {
        id: "ready-static",
        title: "Open the static-shape report (what the saved file declares)",
      }),
    ),
  );
  // dynamic dims
  const dims = Object.entries(report.dynamic_dims || {});
  if (dims.length) {
    list.append(
      item(
        "warn",
        `${dims.length} dynamic dim(s): `,
        ...dims.flatMap(([dim, uses], k) => [
          k ? ", " : "",
          link(dim, () => app.selectTensor(uses[0].tensor, true), {
            title: uses.map((u) => `${u.tensor}[${u.axis}]`).join(", "),
          }),
        ]),
        " ",
        h("button", { type: "button", id: "ready-fix-dims", onclick: () => dimsDialog(app) }, "Fix dims\u2026"),
      ),
    );
  } else {
    list.append(item("good", "No dynamic input dims"));
  }
  // data-dependent nodes
  const dd = report.data_dependent || [];
  if (dd.length) {
    list.append(
      item(
        "bad",
        `${dd.length} data-dependent node(s): `,
        ...dd
          .slice(0, 8)
          .flatMap((d, k) => [
            k ? ", " : "",
            link(d.node, () => app.selectNode(d.node, true), { title: d.reason || "" }),
          ]),
        dd.length > 8 ? ` and ${dd.length - 8} more` : "",
      ),
    );
  } else {
    list.append(item("good", "No data-dependent output shapes"));
  }
  // suggested cut
  const post = report.post_processing;
  if (report.suggested_cut && !(post && sameCut(report.suggested_cut, post))) {
    const outs = report.suggested_cut.outputs || [];
    list.append(
      item(
        "warn",
        "Suggested cut after ",
        ...outs.slice(0, 4).flatMap((t, k) => [k ? ", " : "", link(t, () => app.selectTensor(t, true))]),
        " ",
        h(
          "button",
          {
            type: "button",
            id: "ready-cut",
            onclick: () => app.apply([report.suggested_cut.edit], "cut at the suggested point"),
          },
          "Cut there",
        ),
      ),
    );
  }
  // post-processing that runs on the CPU (NMS, TopK and their decoding), whatever its shapes
  if (post) {
    list.append(
      item(
        "warn",
        `Post-processing (${post.anchors.map((a) => a.kind).join(", ")}, ${post.nodes.length} nodes): ` +
          "cut before it, keeping ",
        ...post.outputs.slice(0, 4).flatMap((t, k) => [k ? ", " : "", link(t, () => app.selectTensor(t, true))]),
        post.outputs.length > 4 ? ` and ${post.outputs.length - 4} more` : "",
        " ",
        h(
          "button",
          { type: "button", id: "ready-cut-post", onclick: () => app.apply([post.edit], "post-processing cut off") },
          "Cut there",
        ),
      ),
    );
  }
  // custom ops with unknown shapes
  const un = report.uninferred || [];
  if (un.length) {
    list.append(item("warn", `${un.length} custom op(s) with unknown output shapes: `,
      ...un.slice(0, 6).flatMap((u, k) => [k ? ", " : "", link(u.node, () => app.selectNode(u.node, true))])));
  }
  // quantization
  const q = app.quant;
  const summary = q ? q.readinessSummary() : null;
  if (!summary) {
    list.append(
      item(
        "todo",
        "Quantization not yet analysed ",
        h(
          "button",
          { type: "button", id: "ready-analyse", onclick: () => q?.openDialog() },
          "Analyse quantization\u2026",
        ),
      ),
    );
  } else {
    list.append(
      item(
        summary.status,
        summary.text,
        ...(summary.links || []).flatMap(([text, go], k) => [k ? ", " : " ", link(text, go)]),
        " ",
        h("button", { type: "button", onclick: () => q.showDock() }, "Open"),
      ),
    );
  }
  box.append(list);
  if (!report.all_static) {
    const firstDynamic = Object.entries(report.tensors).find(([, e]) => e.status !== "static");
    if (firstDynamic) {
      box.append(
        h(
          "p",
          { class: "muted ready-example" },
          "e.g. ",
          link(firstDynamic[0], () => app.selectTensor(firstDynamic[0], true)),
          ` [${shapeText(firstDynamic[1].shape)}]`,
          firstDynamic[1].declared
            ? ` (the file declares [${shapeText(firstDynamic[1].declared)}]; Infer shapes writes it)`
            : "",
        ),
      );
    }
  }
}
