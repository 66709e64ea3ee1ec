// The minimap: the whole drawing in one bitmap, built once per drawing and colour mode, with the
// camera's rectangle drawn over it each frame; a click or drag there moves the camera.
import { SELECT } from "./colors.js";

export function buildMinimap(view) {
  const mm = view.minimap;
  if (!mm) return;
  const dpr = window.devicePixelRatio || 1;
  const r = mm.getBoundingClientRect();
  mm.width = Math.max(1, Math.round(r.width * dpr));
  mm.height = Math.max(1, Math.round(r.height * dpr));
  const d = view.drawing;
  const s = Math.min(mm.width / (d.width + 40), mm.height / (d.height + 40));
  view.mm = { s, ox: (mm.width - d.width * s) / 2, oy: (mm.height - d.height * s) / 2, dpr };
  const base = document.createElement("canvas");
  base.width = mm.width; base.height = mm.height;
  const c = base.getContext("2d");
  const byColor = new Map();
  d.nodes.forEach((b, i) => {
    const color = view.colorOf(i);
    if (!byColor.has(color)) byColor.set(color, []);
    byColor.get(color).push(i);
  });
  for (const [color, members] of byColor) {
    c.fillStyle = color;
    c.beginPath();
    for (const i of members) {
      c.rect(view.mm.ox + view.nx0[i] * s, view.mm.oy + view.ny0[i] * s,
        Math.max(1, (view.nx1[i] - view.nx0[i]) * s), Math.max(1, (view.ny1[i] - view.ny0[i]) * s));
    }
    c.fill();
  }
  view.mmBase = base;
}

export function drawMinimapView(view) {
  const mm = view.minimap;
  if (!mm || !view.mmBase) return;
  const c = mm.getContext("2d");
  c.clearRect(0, 0, mm.width, mm.height);
  c.drawImage(view.mmBase, 0, 0);
  const { s, ox, oy } = view.mm;
  const k = view.cam.k;
  c.strokeStyle = SELECT;
  c.lineWidth = 1.5;
  c.strokeRect(ox + view.cam.x * s, oy + view.cam.y * s, Math.max(3, view.W / k * s), Math.max(3, view.H / k * s));
}

export function minimapTo(view, e) {
  const r = view.minimap.getBoundingClientRect();
  const { s, ox, oy, dpr } = view.mm;
  const wx = ((e.clientX - r.left) * dpr - ox) / s, wy = ((e.clientY - r.top) * dpr - oy) / s;
  const k = view.cam.k;
  view.cam.x = wx - view.W / k / 2;
  view.cam.y = wy - view.H / k / 2;
  view.render();
}
