// Keyboard: Delete (Shift+Delete: with descendants), Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y, Ctrl+F, F, Escape.
// Keys typed into a field belong to the field, except Escape.
import { dialogOpen } from "./dialogs.js";

export function bindKeys(app) {
  document.addEventListener("keydown", (e) => {
    const typing = e.target.closest && e.target.closest("input, textarea, select, [contenteditable]");
    const mod = e.ctrlKey || e.metaKey;
    if (e.key === "Escape") { app.escape(); return; }
    if (mod && e.key.toLowerCase() === "f") {
      e.preventDefault();
      document.getElementById("search").focus();
      document.getElementById("search").select();
      return;
    }
    if (typing || dialogOpen()) return;
    if (mod && e.key.toLowerCase() === "z") { e.preventDefault(); if (e.shiftKey) app.redo(); else app.undo(); return; }
    if (mod && e.key.toLowerCase() === "y") { e.preventDefault(); app.redo(); return; }
    if (mod || e.altKey) return;
    if (e.key === "Delete" || e.key === "Backspace") {
      if (app.selection.nodes.length) { e.preventDefault(); app.deleteNodes(app.selection.nodes, e.shiftKey); }
      return;
    }
    if (e.key === "f" || e.key === "F") { e.preventDefault(); app.graphView.fit(); return; }
    if (e.key === "+" || e.key === "=") app.graphView.zoomAt(1.25);
    if (e.key === "-") app.graphView.zoomAt(0.8);
  });
}
