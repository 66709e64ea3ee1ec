// The quantization endpoints as the page uses them. Every URL and request shape of the
// quantization service is in this file, so the panels do not depend on how the routes spell them.
import { request, hasToken } from "../core/api.js";

const s = (sid) => `/api/sessions/${encodeURIComponent(sid)}`;
const q = (sid, job) => `${s(sid)}/quant/${encodeURIComponent(job)}`;

export const quantApi = {
  // files: File[] (one .npz/.npy, or images / a .zip of images); settings: see dialog.js
  start(sid, files, settings) {
    const form = new FormData();
    for (const f of files) form.append("data", f, f.name);
    form.append("settings", JSON.stringify(settings));
    return request("POST", `${s(sid)}/quant`, { body: form });
  },
  // the session's analyses, newest first: {version, analyses: [{job_id, version, current, state, created, settings}]}
  list: (sid) => request("GET", `${s(sid)}/quant`),
  job: (id) => request("GET", `/api/jobs/${encodeURIComponent(id)}`),
  cancel: (id) => request("DELETE", `/api/jobs/${encodeURIComponent(id)}`),
  report: (sid, job) => request("GET", `${q(sid, job)}/report?histograms=false`),
  histogram: (sid, job, tensor) => request("GET", `${q(sid, job)}/histogram/${encodeURIComponent(tensor)}`),
  // int16: tensor names in int16 over the hybrid base -> a job measuring that precision end to end
  measure: (sid, job, int16) => request("POST", `${q(sid, job)}/measure`, { json: { int16 } }),
  qdqUrl: (sid, job, config, int16) => {
    const p = new URLSearchParams({ config });
    if (int16) p.set("int16", JSON.stringify(int16));
    return `${q(sid, job)}/qdq?${p}`;
  },
  tableUrl: (sid, job, config, int16) => {
    const p = new URLSearchParams({ config });
    if (int16) p.set("int16", JSON.stringify(int16));
    return `${q(sid, job)}/table?${p}`;
  },
  // the plan in the target toolkit's own file (Acuity .quantize, RKNN .quantization.cfg)
  toolkitFileUrl: (sid, job, config, int16) => {
    const p = new URLSearchParams({ config });
    if (int16) p.set("int16", JSON.stringify(int16));
    return `${q(sid, job)}/toolkit-file?${p}`;
  },
  // derived from the session's model (routes_quant_ui.py): a weight's histogram and per-channel min/max
  weightView: (sid, name, axis) =>
    request("GET", `${s(sid)}/weight-view/${encodeURIComponent(name)}?axis=${axis ?? 0}`),
};

// Follow a job until it ends: server-sent events read with fetch (so a token header works and
// nothing reconnects by itself), polling if the stream breaks. onState gets every state.
export async function followJob(id, onState, { signal } = {}) {
  let state = null;
  try {
    const response = await request("GET", `/api/jobs/${encodeURIComponent(id)}`, {
      raw: true,
      headers: { Accept: "text/event-stream" },
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      if (signal?.aborted) { reader.cancel(); return state; }
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (!data) continue;
        state = JSON.parse(data);
        onState(state);
        if (TERMINAL.includes(state.state)) { reader.cancel(); return state; }
      }
    }
  } catch (err) {
    if (err && err.status === 404) throw err;
    // fall through to polling
  }
  for (;;) {
    if (signal?.aborted) return state;
    state = await quantApi.job(id);
    onState(state);
    if (TERMINAL.includes(state.state)) return state;
    await new Promise((r) => setTimeout(r, hasToken() ? 700 : 400));
  }
}

export const TERMINAL = ["succeeded", "failed", "cancelled", "interrupted"];
