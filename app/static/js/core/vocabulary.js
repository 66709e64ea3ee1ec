// The server's vocabulary (GET /api/vocabulary, app/server/routes_vocabulary.py): the layout's box
// metrics, the quantization algorithm, configuration and toolkit names, the dtypes of a new input. The
// page holds no copy of them: main.js reads them once at start-up, before building anything that asks.
import { request } from "./api.js";

let loaded = null;

export async function loadVocabulary() {
  loaded = await request("GET", "/api/vocabulary");
  return loaded;
}

export function vocabulary() {
  if (!loaded) throw new Error("the vocabulary was read before main.js loaded it");
  return loaded;
}
