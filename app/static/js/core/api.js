// The REST client: every action of the editor is one of these calls. Errors come back as
// ApiError with the server's readable message; a 401 asks for the server's token once.

const TOKEN_KEY = "onnx-workbench-token";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

function authHeaders() {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export function hasToken() {
  return Boolean(localStorage.getItem(TOKEN_KEY));
}

async function errorOf(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  const err = body && body.error;
  if (err) return new ApiError(response.status, err.code, err.message, err.details);
  return new ApiError(response.status, "http_error", `the server answered ${response.status} ${response.statusText}`);
}

export async function request(method, path, { json, body, headers, raw } = {}) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const init = { method, headers: { ...authHeaders(), ...(headers || {}) } };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] = "application/json";
    } else if (body !== undefined) {
      init.body = body;
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "network", `the server cannot be reached (${e.message})`);
    }
    if (response.status === 401 && attempt === 0) {
      const token = window.prompt("This server needs its access token (ONNX_WORKBENCH_TOKEN):");
      if (token) { localStorage.setItem(TOKEN_KEY, token.trim()); continue; }
    }
    if (!response.ok) throw await errorOf(response);
    if (raw) return response;
    if (response.status === 204) return null;
    return response.json();
  }
  throw new ApiError(401, "unauthorized", "no access token was given");
}

const s = (id) => `/api/sessions/${encodeURIComponent(id)}`;

export const api = {
  session: (id) => request("GET", s(id)),
  graph: (id) => request("GET", `${s(id)}/graph`),
  graphDelta: (id, since) => request("GET", `${s(id)}/graph/delta?since=${since}`),
  layoutDelta: (id, since) => request("GET", `${s(id)}/layout/delta?since=${since}`),
  layout: (id, scope, full) => {
    const q = new URLSearchParams();
    if (scope && scope.length) q.set("scope", JSON.stringify(scope));
    if (full) q.set("full", "true");
    return request("GET", `${s(id)}/layout?${q}`);
  },
  edits: (id, edits, expectedVersion) =>
    request("POST", `${s(id)}/edits`, { json: { edits, expected_version: expectedVersion ?? null } }),
  undo: (id) => request("POST", `${s(id)}/undo`),
  redo: (id) => request("POST", `${s(id)}/redo`),
  history: (id) => request("GET", `${s(id)}/history`),
  script: (id) => request("GET", `${s(id)}/script`),
  shapes: (id) => request("GET", `${s(id)}/shapes`),
  operators: (id) => request("GET", `${s(id)}/operators`),
  histogram: (id, name) => request("GET", `${s(id)}/histogram/${encodeURIComponent(name)}`),
  putTensor: (id, name, file, expectedVersion) => request(
    "PUT", `${s(id)}/tensors/${encodeURIComponent(name)}.npy` +
      (expectedVersion != null ? `?expected_version=${expectedVersion}` : ""),
    { body: file, headers: { "Content-Type": "application/octet-stream" } }),
  modelUrl: (id) => `${s(id)}/model`,
  tensorUrl: (id, name) => `${s(id)}/tensors/${encodeURIComponent(name)}.npy`,
};

// A download of a server file: a plain link when no token is needed (streams, any size),
// otherwise fetched with the token and handed over as a blob.
export async function download(url, fallbackName) {
  if (!hasToken()) {
    const a = document.createElement("a");
    a.href = url;
    a.download = "";
    document.body.appendChild(a);
    a.click();
    a.remove();
    return;
  }
  const response = await request("GET", url, { raw: true });
  saveBlob(await response.blob(), dispositionName(response.headers.get("Content-Disposition")) || fallbackName);
}

// The file name of a Content-Disposition: the exact UTF-8 name (filename*) first, else the ASCII one.
function dispositionName(disposition) {
  const exact = /filename\*=UTF-8''([^;\s]+)/i.exec(disposition || "");
  if (exact) {
    try { return decodeURIComponent(exact[1]); } catch { /* malformed: use the ASCII name */ }
  }
  const ascii = /filename="([^"]*)"/i.exec(disposition || "");
  return ascii ? ascii[1] : "";
}

export function saveBlob(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// Upload with progress (fetch cannot report upload progress; XMLHttpRequest can).
export function uploadModel(files, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    const main = files.find((f) => /\.(onnx|zip)$/i.test(f.name)) || files[0];
    form.append("file", main, main.name);
    for (const f of files) if (f !== main) form.append("data", f, f.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/sessions");
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total, "upload"); };
    xhr.upload.onload = () => onProgress(1, "reading the model on the server");
    xhr.onerror = () => reject(new ApiError(0, "network", "the upload was interrupted"));
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300 && body) resolve(body);
      else if (body && body.error)
        reject(new ApiError(xhr.status, body.error.code, body.error.message, body.error.details));
      else reject(new ApiError(xhr.status, "http_error", `the server answered ${xhr.status}`));
    };
    xhr.send(form);
  });
}
