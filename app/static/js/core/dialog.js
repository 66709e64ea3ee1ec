// Modal dialogs: one generic form dialog (errors from the server shown inside it, the dialog kept
// open so the user can correct the input), and a small prompt helper built on it.
import { h, clear } from "./dom.js";
import { errorMessage } from "./toast.js";

const backdrop = () => document.getElementById("dialog-backdrop");
let closeCurrent = null;

export function dialogOpen() { return !backdrop().hidden; }

export function closeDialog() { if (closeCurrent) closeCurrent(); }

// body: a Node; onSubmit: async () => result; a thrown error is shown in the dialog.
export function openDialog({ title, body, submitLabel = "Apply", onSubmit, wide = false }) {
  const box = document.getElementById("dialog");
  clear(box);
  box.style.width = wide ? "min(860px, 96vw)" : "";
  const error = h("div", { class: "error", role: "alert" });
  const submit = h("button", { class: "primary", type: "submit", id: "dialog-submit" }, submitLabel);
  const cancel = h("button", { type: "button", id: "dialog-cancel" }, onSubmit ? "Cancel" : "Close");
  const form = h("form", {}, h("h2", { text: title }), body, error,
    h("div", { class: "actions" }, cancel, onSubmit ? submit : null));
  box.appendChild(form);
  backdrop().hidden = false;
  return new Promise((resolve) => {
    const done = (value) => {
      backdrop().hidden = true;
      clear(box);
      closeCurrent = null;
      resolve(value);
    };
    closeCurrent = () => done(null);
    cancel.addEventListener("click", () => done(null));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!onSubmit) { done(null); return; }
      error.textContent = "";
      submit.disabled = true;
      try {
        const result = await onSubmit();
        done(result === undefined ? true : result);
      } catch (err) {
        error.textContent = errorMessage(err);
        submit.disabled = false;
      }
    });
    const first = box.querySelector("input:not([type=hidden]), select, textarea");
    (first || submit).focus();
  });
}

export function promptText(title, label, value = "", onSubmit) {
  const input = h("input", { type: "text", value, id: "dialog-input", style: "width:100%" });
  return openDialog({ title, body: h("div", { class: "kv" }, h("span", { class: "k", text: label }), input),
    onSubmit: () => onSubmit(input.value.trim()) });
}
