// The landing page: drop or pick a model (with its external-data files), watch the upload, open it.
import { uploadModel } from "./core/api.js";
import { toast, errorMessage } from "./core/toast.js";

const RECENT_KEY = "onnx-workbench-recent";
const drop = document.getElementById("drop");
const input = document.getElementById("file-input");
const box = document.getElementById("upload");
const bar = document.getElementById("upload-progress");
const status = document.getElementById("upload-status");
let busy = false;

function mb(n) { return `${(n / 1048576).toFixed(1)} MB`; }

// The recently opened sessions kept in localStorage; [] when absent or not a list (edited by hand, old format).
function readRecent() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) || "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

async function send(fileList) {
  const files = [...fileList];
  if (!files.length || busy) return;
  if (!files.some((f) => /\.(onnx|zip)$/i.test(f.name))) {
    toast("Choose an .onnx model (with its data files) or a .zip holding it.", "error");
    return;
  }
  busy = true;
  const total = files.reduce((a, f) => a + f.size, 0);
  box.hidden = false;
  document.getElementById("upload-name").textContent = `${files.map((f) => f.name).join(", ")} (${mb(total)})`;
  bar.removeAttribute("value");
  try {
    const created = await uploadModel(files, (fraction, phase) => {
      bar.value = fraction;
      status.textContent = phase === "upload" ? `uploading: ${Math.round(fraction * 100)} %` : `${phase}\u2026`;
    });
    const recent = readRecent().filter((r) => r.id !== created.id);
    const main = files.find((f) => /\.(onnx|zip)$/i.test(f.name));
    recent.unshift({ id: created.id, name: main.name, when: Date.now() });
    localStorage.setItem(RECENT_KEY, JSON.stringify(recent.slice(0, 10)));
    status.textContent = "opening the editor\u2026";
    window.location.assign(`/s/${created.id}`);
  } catch (err) {
    box.hidden = true;
    toast(`Upload failed: ${errorMessage(err)}`, "error");
  } finally {
    busy = false;
  }
}

input.addEventListener("change", () => send(input.files));
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) {
  drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.remove("over"); });
}
drop.addEventListener("drop", (e) => send(e.dataTransfer.files));
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });

const recent = readRecent();
if (recent.length) {
  document.getElementById("recent").hidden = false;
  const list = document.getElementById("recent-list");
  for (const r of recent) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `/s/${r.id}`;
    a.textContent = r.name;
    li.append(a, ` \u2014 ${new Date(r.when).toLocaleString()}`);
    list.appendChild(li);
  }
}
