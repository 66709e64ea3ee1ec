// The canvas' colours: box categories (the layout's CATEGORIES in app/graph/layout.py), edges and marks.
export const CATEGORY_COLORS = {
  layer: "#2f5fb3", activation: "#a3302a", pool: "#2e7d32", normalization: "#00695c", shape: "#6d4c41",
  quantization: "#7b1fa2", control: "#d35400", constant: "#6b7280", custom: "#ad1457", other: "#455a64",
  input: "#1f2937", output: "#1f2937",
};

export const EDGE_COLOR = "#8a94a6";
export const MARK_EDGE = "#e07a00";
export const SELECT = "#2563eb";

// A light version of a "#rrggbb" colour (box bodies in a colour mode; the title keeps the full colour).
export function tint(color) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!m) return "#fff";
  return `rgb(${m.slice(1).map((x) => Math.round(255 - (255 - parseInt(x, 16)) * 0.28)).join(",")})`;
}

// Dark or white text, whichever reads better on a "#rrggbb" background.
export function inkOn(color) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!m) return "#fff";
  const [r, g, b] = m.slice(1).map((x) => parseInt(x, 16));
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#111827" : "#fff";
}
