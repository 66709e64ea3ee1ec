// Starts the quantization UI on the editor page (loaded after editor.js, which sets window.editor).
import { QuantUI } from "./quant-panel.js";

const app = window.editor;
if (app) app.quant = new QuantUI(app);
