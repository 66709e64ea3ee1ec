// The toolbar: undo and redo, the panel toggles, the view buttons, the whole-model Edit menu, the
// downloads and the search box, wired to the editor.
import { api } from "../core/api.js";
import { applyScriptFile, downloadScript } from "./actions.js";
import { hideMenus } from "./context-menu.js";
import { addNodeDialog } from "./dialogs/add-node.js";
import { dimsDialog } from "./dialogs/dims.js";
import { extractDialog } from "./dialogs/extract.js";
import { addInputDialog, addOutputDialog } from "./dialogs/io.js";
import { convertOpsetDialog } from "./dialogs/opset.js";
import { downloadModel } from "./actions.js";
import { togglePanel } from "./panels/left-panel.js";
import { bindSearch } from "./search.js";

export function bindToolbar(editor) {
  const on = (id, f) => document.getElementById(id).addEventListener("click", f);
  on("btn-undo", () => editor.undo());
  on("btn-redo", () => editor.redo());
  on("btn-history", () => togglePanel(editor, "history"));
  on("btn-shapes", () => togglePanel(editor, "shapes"));
  on("btn-fit", () => editor.graphView.fit());
  on("btn-zoom-in", () => editor.graphView.zoomAt(1.25));
  on("btn-zoom-out", () => editor.graphView.zoomAt(0.8));
  on("btn-script-upload", () => applyScriptFile(editor));
  on("btn-tools", (e) => {
    e.stopPropagation();
    const m = document.getElementById("tools-menu");
    m.hidden = !m.hidden;
  });
  const download = document.getElementById("btn-download");
  download.href = api.modelUrl(editor.sid);
  download.addEventListener("click", (e) => {
    e.preventDefault();
    window.__lastDownload = api.modelUrl(editor.sid);
    downloadModel(editor);
  });
  on("btn-script", (e) => { e.preventDefault(); downloadScript(editor); });
  const actions = {
    "add-node": () => addNodeDialog(editor),
    "add-input": () => addInputDialog(editor),
    "add-output": () => addOutputDialog(editor),
    dims: () => dimsDialog(editor),
    extract: () => extractDialog(editor),
    "convert-opset": () => convertOpsetDialog(editor),
    "infer-shapes": () => editor.apply([{ op: "infer_shapes" }], "shapes inferred"),
    cleanup: () => editor.apply([{ op: "cleanup" }], "cleaned up"),
    fold: () => editor.apply([{ op: "fold_constants" }], "constants folded"),
    "constants-to-initializers": () =>
      editor.apply(
        [{ op: "constants_to_initializers", min_elements: 2 }],
        "Constant-node weights moved into initializers",
      ),
    "apply-script": () => applyScriptFile(editor),
    relayout: () => editor.load({ fullLayout: true, keepCamera: false }),
  };
  document.getElementById("tools-menu").addEventListener("click", (e) => {
    const action = e.target.closest("[data-action]")?.dataset.action;
    if (action && actions[action]) {
      hideMenus();
      if (!editor.model) return;
      if (editor.inBody && action !== "relayout") {
        editor.error("Whole-model edits work on the main graph; go back to it first.");
        return;
      }
      actions[action]();
    }
  });
  document.addEventListener("click", (e) => {
    if (!e.target.closest(".menu") && !e.target.closest("#btn-tools")) hideMenus();
    if (!e.target.closest(".search")) document.getElementById("search-results").hidden = true;
  });
  bindSearch(editor);
}
