// The left panel's two sections (history, static shapes): one toggle each; shown when open.
import { refreshHistory } from "./history.js";
import { refreshShapes } from "./shapes.js";

export function togglePanel(editor, which) {
  const panel = document.getElementById(`${which}-panel`);
  panel.hidden = !panel.hidden;
  document.getElementById(`btn-${which}`).classList.toggle("on", !panel.hidden);
  const left = document.getElementById("left-panel");
  left.hidden = document.getElementById("history-panel").hidden && document.getElementById("shapes-panel").hidden;
  if (!panel.hidden) (which === "history" ? refreshHistory(editor) : refreshShapes(editor));
  else editor.applyMarks();
}
