// The editor page's entry module: reads the server's vocabulary, builds the editor and the
// quantization UI and wires them together, then loads the session. The session id comes in a meta
// tag: the page's Content-Security-Policy allows no inline script.
import { loadVocabulary } from "./core/vocabulary.js";
import { toast, errorMessage } from "./core/toast.js";
import { Editor } from "./editor/editor.js";
import { QuantUI } from "./quant/ui.js";

async function start() {
  const { box } = await loadVocabulary();
  const editor = new Editor(document.querySelector('meta[name="session-id"]').content, box);
  editor.quant = new QuantUI(editor);
  // The test hook, as window.__lastDownload: the end-to-end tests (tests/e2e) and the console read the
  // page's state through it (editor.quant for the quantization UI). No module of the page reads it.
  window.__editor = editor;
  await editor.load();
}

start().catch((err) => toast(`The editor cannot start: ${errorMessage(err)}`, "error"));
