// Hit testing along an edge: the distance from a point to the edge's drawn curve.

export function edgeDistance(p, x, y) {
  let best = Infinity;
  for (let j = 2; j < p.length; j += 2) {
    const ax = p[j - 2], ay = p[j - 1], bx = p[j], by = p[j + 1];
    const steps = ax === bx ? 1 : 8;
    let px = ax, py = ay;
    for (let s = 1; s <= steps; s++) {
      const t = s / steps;
      // the same cubic as edgePath (paint.js): vertical tangents at both ends
      const u = 1 - t;
      const my = (by - ay) / 2;
      const qx = steps === 1 ? bx : u * u * u * ax + 3 * u * u * t * ax + 3 * u * t * t * bx + t * t * t * bx;
      const qy =
        steps === 1 ? by : u * u * u * ay + 3 * u * u * t * (ay + my) + 3 * u * t * t * (by - my) + t * t * t * by;
      best = Math.min(best, segDistance(x, y, px, py, qx, qy));
      px = qx; py = qy;
    }
  }
  return best;
}

function segDistance(x, y, ax, ay, bx, by) {
  const dx = bx - ax, dy = by - ay;
  const len = dx * dx + dy * dy;
  let t = len ? ((x - ax) * dx + (y - ay) * dy) / len : 0;
  t = Math.max(0, Math.min(1, t));
  const px = ax + t * dx - x, py = ay + t * dy - y;
  return Math.sqrt(px * px + py * py);
}
