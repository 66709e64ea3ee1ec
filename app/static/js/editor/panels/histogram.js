// The initializer histogram: a small SVG bar chart with min/max along the axis.
import { fmt } from "../../core/dom.js";
import { svg } from "../../core/svg.js";

export function histogram(counts, edges) {
  const W = 320, H = 90, B = 14;
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "histogram",
    role: "img",
    "aria-label": "histogram of values",
  });
  const max = Math.max(1, ...counts);
  const bw = W / Math.max(1, counts.length);
  counts.forEach((c, i) => {
    // a log-ish scale keeps a spike at zero from flattening every other bar
    const hgt = c ? Math.max(1, ((Math.log1p(c) / Math.log1p(max)) * (H - B - 4))) : 0;
    const bar = svg("rect", {
      x: (i * bw + 0.5).toFixed(2),
      y: (H - B - hgt).toFixed(2),
      width: Math.max(0.5, bw - 1).toFixed(2),
      height: hgt.toFixed(2),
      fill: "#2f5fb3",
    });
    const tip = svg("title", {});
    tip.textContent = `[${fmt(edges[i])}, ${fmt(edges[i + 1])}): ${c}`;
    bar.appendChild(tip);
    root.appendChild(bar);
  });
  root.appendChild(svg("line", { x1: 0, x2: W, y1: H - B, y2: H - B, stroke: "#9aa3b2" }));
  const left = svg("text", { x: 0, y: H - 2, "font-size": 10, fill: "#667085" });
  left.textContent = fmt(edges[0]);
  const right = svg("text", { x: W, y: H - 2, "font-size": 10, fill: "#667085", "text-anchor": "end" });
  right.textContent = fmt(edges[edges.length - 1]);
  root.append(left, right);
  return root;
}
