// Questions about the graph view (the server's JSON): lookups, reachability, symbolic dims, search.
// Pure functions of the view, so what they answer is what the server holds.

export function scopeGraph(view, scope) {
  let graph = view.graph;
  for (let i = 0; i < scope.length; i += 2) {
    const owner = graph.nodes.find((n) => n.id === scope[i]);
    const [attr, idx] = scope[i + 1].split(":");
    const body = owner && (owner.subgraphs || []).find((s) => s.attribute === attr && s.index === Number(idx || 0));
    if (!body) return null;
    graph = body.graph;
  }
  return graph;
}

export const NO_HITS = Object.freeze({ total: 0, hits: [], nodeIds: null });

export class GraphModel {
  constructor(graph) {
    this.graph = graph;
    this.nodes = new Map(graph.nodes.map((n, i) => [n.id, { ...n, pos: i }]));
    this.reads = new Map(); // node id -> tensors it reads (bodies included), from the tensors table
    for (const [name, t] of Object.entries(graph.tensors)) {
      for (const c of t.consumers) {
        if (!this.reads.has(c)) this.reads.set(c, []);
        this.reads.get(c).push(name);
      }
    }
  }

  node(id) { return this.nodes.get(id); }
  tensor(name) { return this.graph.tensors[name]; }
  initializer(name) { return (this.graph.initializers || {})[name]; }

  // Nodes downstream of a tensor (every reader, their readers, ...).
  downstreamOfTensors(names) {
    const seen = new Set();
    const stack = [...names];
    while (stack.length) {
      const t = this.tensor(stack.pop());
      if (!t) continue;
      for (const c of t.consumers) {
        if (seen.has(c)) continue;
        seen.add(c);
        for (const o of this.node(c)?.outputs || []) if (o) stack.push(o);
      }
    }
    return seen;
  }

  downstreamOfNodes(ids) {
    const outs = [];
    for (const id of ids) outs.push(...(this.node(id)?.outputs || []).filter(Boolean));
    const found = this.downstreamOfTensors(outs);
    for (const id of ids) found.add(id);
    return found;
  }

  // Tensors the given ones are computed from (themselves included).
  upstreamTensors(names) {
    const seen = new Set();
    const stack = [...names];
    while (stack.length) {
      const name = stack.pop();
      if (seen.has(name)) continue;
      seen.add(name);
      const producer = this.tensor(name)?.producer;
      if (producer) for (const r of this.reads.get(producer) || []) stack.push(r);
    }
    return seen;
  }

  // "Cut here": the tensor becomes an output and everything computed from it goes, in one extract
  // (one undo step). Outputs that do not depend on the tensor are kept.
  cutEdit(tensor) {
    const down = this.downstreamOfTensors([tensor]);
    const outputs = [tensor, ...this.graph.outputs.filter((o) => o !== tensor && !down.has(this.tensor(o)?.producer))];
    return this.extractEdit(outputs);
  }

  extractEdit(outputs, inputs = null) {
    const up = this.upstreamTensors(outputs);
    return { op: "extract", inputs: inputs || this.graph.inputs.filter((i) => up.has(i)), outputs };
  }

  // Every symbolic dim name and the tensors whose shape uses it.
  symbolicDims() {
    const dims = new Map();
    for (const [name, t] of Object.entries(this.graph.tensors)) {
      for (const d of t.shape || []) {
        if (typeof d !== "string") continue;
        if (!dims.has(d)) dims.set(d, []);
        const list = dims.get(d);
        if (list[list.length - 1] !== name) list.push(name);
      }
    }
    return dims;
  }

  /** Named dims split by origin: those of the model inputs (with the inputs using them) come first;
   * the rest are derived inside the graph (formulas, onnx's unk__N) and follow from the input dims. */
  dimsByOrigin() {
    const all = this.symbolicDims();
    const inputs = new Set(this.graph.inputs);
    const inputDims = [...all.entries()].filter(([, users]) => users.some((t) => inputs.has(t)))
      .map(([dim, users]) => [dim, users.filter((t) => inputs.has(t))]);
    const taken = new Set(inputDims.map(([dim]) => dim));
    const otherDims = [...all.entries()]
      .filter(([dim]) => !taken.has(dim))
      .sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }));
    return { inputDims, otherDims };
  }

  tensorNames() { return Object.keys(this.graph.tensors); }

  search(text, limit = 60) {
    const q = text.trim().toLowerCase();
    if (!q) return NO_HITS;
    const hits = [];
    for (const n of this.graph.nodes) {
      const opHit = n.op_type.toLowerCase() === q;
      if (
        opHit ||
        n.name.toLowerCase().includes(q) ||
        n.id.toLowerCase().includes(q) ||
        n.op_type.toLowerCase().includes(q)
      ) {
        hits.push({
          kind: "node",
          id: n.id,
          label: n.name || n.id,
          detail: n.op_type,
          rank: opHit || n.name.toLowerCase() === q ? 0 : 1,
        });
      }
    }
    for (const name of Object.keys(this.graph.tensors)) {
      if (name.toLowerCase().includes(q))
        hits.push({ kind: "tensor", id: name, label: name, detail: "tensor", rank: name.toLowerCase() === q ? 0 : 2 });
    }
    hits.sort((a, b) => a.rank - b.rank);
    return {
      total: hits.length,
      hits: hits.slice(0, limit),
      nodeIds: hits.filter((x) => x.kind === "node").map((x) => x.id),
    };
  }
}

export function parseShape(text) {
  const parts = text.split(/[x\u00d7,\s]+/).filter(Boolean);
  return parts.map((p) => (/^\d+$/.test(p) ? Number(p) : p === "?" || p === "-1" ? null : p));
}

// Two cuts that keep the same outputs are one cut, shown once.
export function sameCut(a, b) { return a.outputs.join("\n") === b.outputs.join("\n"); }

export function describeEdit(e) {
  const show = (v) => (Array.isArray(v) ? v.join(" / ") : v);
  const parts = [e.op.replace(/_/g, " ")];
  for (const key of ["node", "tensor", "name", "dim", "op_type"]) if (e[key] !== undefined) parts.push(show(e[key]));
  if (e.to !== undefined) parts.push(`\u2192 ${e.to}`);
  if (e.value !== undefined && typeof e.value !== "object") parts.push(`= ${e.value}`);
  if (e.version !== undefined) parts.push(`to ${e.version}`);
  if (e.descendants) parts.push("(with descendants)");
  if (e.op === "extract") parts.push(`\u2192 ${(e.outputs || []).join(", ")}`);
  if (e.op === "make_static") {
    parts.push(...Object.entries(e.shapes || {}).map(([k, v]) => `${k} = ${v.join("x")}`),
      ...Object.entries(e.dims || {}).map(([k, v]) => `${k} = ${v}`));
  }
  return parts.join(" ");
}
