// Subgraph bodies (If, Loop, Scan): opening one, going back out (the camera as it was), and the
// scope bar that shows where the editor is.
import { clear, h } from "../core/dom.js";

export function openBody(editor, id, attribute, index) {
  editor.cameras = [...(editor.cameras || []).slice(0, editor.scope.length / 2), { ...editor.graphView.cam }];
  editor.scope = [...editor.scope, id, index ? `${attribute}:${index}` : attribute];
  editor.selection = { nodes: [], tensor: null };
  return editor.load();
}

// Back to an enclosing graph: the camera is where it was when the body was opened from it.
export async function goToScope(editor, depth) {
  const camera = (editor.cameras || [])[depth / 2];
  editor.scope = editor.scope.slice(0, depth);
  editor.cameras = (editor.cameras || []).slice(0, depth / 2);
  editor.selection = { nodes: [], tensor: null };
  const loaded = await editor.load();
  if (loaded && camera) {
    editor.graphView.cam = camera;
    editor.graphView.render();
  }
  return loaded;
}

export function renderScopeBar(editor) {
  const bar = document.getElementById("scope-bar");
  clear(bar);
  bar.hidden = !editor.inBody;
  if (!editor.inBody) return;
  bar.append(h("button", { type: "button", onclick: () => goToScope(editor, editor.scope.length - 2) }, "\u2190 Back"),
    h("button", { class: "link", type: "button", onclick: () => goToScope(editor, 0) }, "main graph"));
  for (let i = 0; i < editor.scope.length; i += 2) {
    bar.append(
      " \u203a ",
      h(
        "button",
        { class: "link", type: "button", onclick: () => goToScope(editor, i + 2) },
        `${editor.scope[i]} . ${editor.scope[i + 1]}`,
      ),
    );
  }
}
