// Keyboard: Delete (Shift+Delete: with descendants), Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y, Ctrl+F, F, Escape.
// Keys typed into a field belong to the field, except Escape, which closes what is open, else selects nothing.
import { closeDialog, dialogOpen } from "../core/dialog.js";
import { deleteNodes } from "./actions.js";
import { hideMenus } from "./context-menu.js";

export function bindKeys(app) {
  document.addEventListener("keydown", (e) => {
    const typing = e.target.closest && e.target.closest("input, textarea, select, [contenteditable]");
    const mod = e.ctrlKey || e.metaKey;
    if (e.key === "Escape") { escape(app); return; }
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
      if (app.selection.nodes.length) { e.preventDefault(); deleteNodes(app, app.selection.nodes, e.shiftKey); }
      return;
    }
    if (e.key === "f" || e.key === "F") { e.preventDefault(); app.graphView.fit(); return; }
    if (e.key === "+" || e.key === "=") app.graphView.zoomAt(1.25);
    if (e.key === "-") app.graphView.zoomAt(0.8);
  });
}

export function escape(editor) {
  if (dialogOpen()) { closeDialog(); return; }
  const results = document.getElementById("search-results");
  if (!results.hidden) { results.hidden = true; return; }
  hideMenus();
  editor.setSelection([], null);
}
