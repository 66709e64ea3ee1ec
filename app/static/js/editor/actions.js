// The editor's actions on nodes, tensors and files: delete, rename, cut, replace an initializer,
// downloads, and applying an edit script from a file. Each is one edit request (editor.apply).
import { api, download, saveBlob } from "../core/api.js";
import { promptText } from "../core/dialog.js";
import { toast } from "../core/toast.js";

export function deleteNodes(editor, ids, descendants) {
  if (!ids.length) return;
  let doomed = ids;
  if (descendants) {
    // a node below another selected one goes with it: delete only the topmost ones
    const below = new Set();
    for (const id of ids) for (const d of editor.model.downstreamOfNodes([id])) if (d !== id) below.add(d);
    doomed = ids.filter((id) => !below.has(id));
  }
  // readers before producers, so that a selected chain can go in one request
  doomed = [...doomed].sort((a, b) => (editor.model.node(b)?.pos ?? 0) - (editor.model.node(a)?.pos ?? 0));
  const edits = doomed.map((id) => ({ op: "delete_node", node: editor.ref(id), descendants }));
  editor.selection = { nodes: [], tensor: null };
  return editor.apply(
    edits,
    `${ids.length === 1 ? ids[0] : `${ids.length} nodes`} deleted${descendants ? " with descendants" : ""}`,
  );
}

export function deleteReconnect(editor, id) {
  editor.selection = { nodes: [], tensor: null };
  return editor.apply(
    [{ op: "delete_node", node: editor.ref(id), reconnect: true }],
    `${id} deleted, readers reconnected`,
  );
}

export function renameTensor(editor, name) {
  return promptText(`Rename tensor`, "new name", name, async (to) => {
    if (!to || to === name) return;
    await editor.applyOrThrow([{ op: "rename_tensor", tensor: name, to }], `tensor renamed to ${to}`, {
      select: { tensor: to },
    });
  });
}

export function cutAt(editor, name) {
  const edit = editor.model.cutEdit(name);
  editor.selection = { nodes: [], tensor: name };
  return editor.apply([edit], `cut at ${name}`);
}

export async function replaceInitializer(editor, name, file) {
  editor.busy(true);
  try {
    const res = await api.putTensor(editor.sid, name, file, editor.version);
    await editor.refresh();
    toast(`${name} replaced (v${res.version})`, "ok", 3000);
  } catch (err) {
    editor.error(err);
  } finally {
    editor.busy(false);
  }
}

export function downloadTensor(editor, name) {
  download(api.tensorUrl(editor.sid, name), `${name.replace(/[/\\]/g, "_")}.npy`).catch((err) => editor.error(err));
}

export async function downloadScript(editor) {
  try {
    const script = await api.script(editor.sid);
    saveBlob(new Blob([JSON.stringify(script, null, 2)], { type: "application/json" }), "edits.json");
  } catch (err) {
    editor.error(err);
  }
}

export function applyScriptFile(editor) {
  const input = document.getElementById("hidden-file");
  input.accept = ".json,application/json";
  input.onchange = async () => {
    const file = input.files[0];
    input.value = "";
    if (!file) return;
    let data;
    try {
      data = JSON.parse(await file.text());
    } catch (err) {
      editor.error(`${file.name} is not JSON: ${err.message}`);
      return;
    }
    const edits = Array.isArray(data) ? data : data && data.edits;
    if (!Array.isArray(edits) || (data.format && data.format !== "onnx-workbench/edits")) {
      editor.error(`${file.name} is not an edit script ({"format": "onnx-workbench/edits", "edits": [...]})`);
      return;
    }
    await editor.apply(edits, `${edits.length} edit(s) from ${file.name} applied`);
  };
  input.click();
}

export function downloadModel(editor) {
  download(api.modelUrl(editor.sid), "model.onnx").catch((err) => editor.error(err));
}
