// The history panel: the applied edits, the current one marked, and the undone ones Redo applies.
import { api } from "../../core/api.js";
import { clear, h } from "../../core/dom.js";
import { describeEdit } from "../../graph/model.js";

export async function refreshHistory(editor) {
  const list = document.getElementById("history-list");
  try {
    const hist = await api.history(editor.sid);
    clear(list);
    if (!hist.done.length && !hist.undone.length) list.append(h("li", { class: "muted", text: "no edits yet" }));
    hist.done.forEach((e, i) =>
      list.append(h("li", { class: i === hist.done.length - 1 ? "current" : "", text: describeEdit(e) })),
    );
    for (const e of hist.undone)
      list.append(h("li", { class: "undone", text: describeEdit(e), title: "undone: Redo applies it again" }));
  } catch (err) {
    editor.error(err);
  }
}
