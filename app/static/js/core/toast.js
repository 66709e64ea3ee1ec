// Messages for the user: readable, short-lived, never the browser console.
export function toast(message, kind = "", ms = 6000) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = document.createElement("div");
  el.className = `toast ${kind}`;
  el.textContent = message;
  el.addEventListener("click", () => el.remove());
  box.appendChild(el);
  setTimeout(() => el.remove(), kind === "error" ? Math.max(ms, 10000) : ms);
}

export function errorMessage(err) {
  if (err && err.message) return err.message;
  return String(err);
}
