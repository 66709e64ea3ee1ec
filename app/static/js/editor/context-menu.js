// The right-click menu of the graph: what applies to the box, edge or empty canvas under the
// pointer, and hiding the page's menus.
import { promptText } from "../core/dialog.js";
import { clear, h } from "../core/dom.js";
import { cutAt, deleteNodes, deleteReconnect, renameTensor } from "./actions.js";
import { addNodeDialog } from "./dialogs/add-node.js";
import { dimsDialog } from "./dialogs/dims.js";
import { pickForExtract } from "./dialogs/extract.js";
import { openBody } from "./scope.js";

export function openContextMenu(editor, hit, e) {
  const items = [];
  if (hit && hit.type === "node" && editor.drawing.nodes[hit.index].kind === "op") {
    const id = editor.drawing.nodes[hit.index].id;
    if (!editor.selection.nodes.includes(id)) editor.setSelection([id], null);
    const ids = editor.selection.nodes;
    const box = editor.drawing.nodes[hit.index];
    if (ids.length > 1) {
      items.push(
        [`Delete ${ids.length} nodes`, () => deleteNodes(editor, ids, false)],
        [`Delete ${ids.length} nodes with descendants`, () => deleteNodes(editor, ids, true)],
      );
    } else {
      items.push(
        ["Delete", () => deleteNodes(editor, [id], false)],
        ["Delete with descendants", () => deleteNodes(editor, [id], true)],
        ["Delete and reconnect", () => deleteReconnect(editor, id)],
        [
          "Rename node\u2026",
          () =>
            promptText("Rename node", "new name", editor.model.node(id)?.name || "", (to) =>
              editor.applyOrThrow([{ op: "rename_node", node: editor.ref(id), to }], `node renamed to ${to}`, {
                select: { node: to },
              }),
            ),
        ],
      );
      for (const [attr, index] of box.bodies || [])
        items.push([`Open body ${attr}${index ? ":" + index : ""}`, () => openBody(editor, id, attr, index)]);
      const out = editor.model.node(id)?.outputs.find(Boolean);
      if (out && !editor.inBody)
        items.push(
          ["Add node after\u2026", () => addNodeDialog(editor, out)],
          ["Cut after editor node", () => cutAt(editor, out)],
        );
    }
  } else if (hit && (hit.type === "edge" || hit.type === "node")) {
    const tensor = hit.type === "edge" ? hit.tensor : editor.drawing.nodes[hit.index].tensor;
    editor.selectTensor(tensor);
    if (!editor.inBody) {
      items.push(["Rename tensor\u2026", () => renameTensor(editor, tensor)],
        ["Cut here", () => cutAt(editor, tensor)]);
      const t = editor.model.tensor(tensor);
      if (t && !t.is_output)
        items.push([
          "Make model output",
          () => editor.apply([{ op: "add_output", tensor }], `${tensor} is a model output`),
        ]);
      items.push(
        ["Extract from here\u2026", () => pickForExtract(editor, tensor, "inputs")],
        ["Extract up to here\u2026", () => pickForExtract(editor, tensor, "outputs")],
        ["Add node reading it\u2026", () => addNodeDialog(editor, tensor)],
      );
    }
  } else {
    items.push(["Fit (F)", () => editor.graphView.fit()]);
    if (!editor.inBody)
      items.push(["Add node\u2026", () => addNodeDialog(editor)], ["Fix dims\u2026", () => dimsDialog(editor)]);
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
            hideMenus();
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

export function hideMenus() {
  document.getElementById("context-menu").hidden = true;
  document.getElementById("tools-menu").hidden = true;
}
