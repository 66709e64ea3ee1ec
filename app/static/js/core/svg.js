// SVG elements built without markup (names from a model are never parsed), for every chart of the page.
const NS = "http://www.w3.org/2000/svg";

// attributes that are null, undefined or false are left out; children are nodes or text
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// a coordinate rounded to 1/100 pixel: shorter markup, the same picture
export function r2(x) { return Math.round(x * 100) / 100; }
