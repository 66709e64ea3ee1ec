// What changed since the version the page holds, applied in place of reading everything again: the
// graph view's delta (GET .../graph/delta, app/server/graph_delta.py) and the drawing's delta
// (GET .../layout/delta, Layout.update in app/graph/layout.py). The rules are the server's own, so the
// result is what a fresh load of the new version shows. Either function throws when a delta does not
// fit what the page holds; the editor then reads everything again.

const MODEL_FIELDS = ["version", "ir_version", "opset", "producer", "shape_inference"];

// Bring a full view of version delta.since to delta.version, in place.
export function applyGraphDelta(view, delta) {
  if (delta.full || view.version !== delta.since) throw new Error("the graph delta is not for this view");
  const graph = view.graph;
  const change = delta.graph;
  const upserted = change.nodes.upserted;
  const drop = new Set(change.nodes.removed);
  for (const u of upserted) drop.add(u.node.id);
  const follower = new Map(upserted.map((u) => [u.after, u.node])); // each upserted node after its predecessor
  const nodes = [];
  const follow = (after) => {
    while (follower.has(after)) {
      const node = follower.get(after);
      follower.delete(after);
      nodes.push(node);
      after = node.id;
    }
  };
  follow(null);
  for (const node of graph.nodes) {
    if (drop.has(node.id)) continue;
    nodes.push(node);
    follow(node.id);
  }
  if (follower.size) throw new Error("the graph delta places nodes after nodes this view does not have");
  for (const key of MODEL_FIELDS) view[key] = delta[key];
  graph.inputs = change.inputs;
  graph.outputs = change.outputs;
  graph.nodes = nodes;
  for (const table of ["tensors", "initializers"]) {
    for (const name of change[table].removed) delete graph[table][name];
    Object.assign(graph[table], change[table].upserted);
  }
}

// The main graph's drawing held by box id, with its edges per tensor in drawing order (a tensor new
// to the drawing goes last), which is how the server holds it.
export class DrawingState {
  constructor(drawing) {
    const ids = drawing.nodes.map((b) => b.id);
    this.boxes = new Map(drawing.nodes.map((b) => [b.id, b]));
    this.edges = new Map();
    for (const e of drawing.edges) {
      let list = this.edges.get(e.t);
      if (!list) this.edges.set(e.t, (list = []));
      list.push({ ...e, from: ids[e.from], to: ids[e.to] });
    }
  }

  // The drawing of the layout delta's version for `graph`, the view's graph at that version (boxes in
  // its order: inputs, nodes that have a box, outputs; edges and stubs naming boxes by position).
  apply(delta, graph) {
    if (delta.full) throw new Error("the layout delta is a fallback");
    for (const id of delta.boxes.removed) this.boxes.delete(id);
    for (const box of delta.boxes.upserted) this.boxes.set(box.id, box);
    for (const [name, edges] of delta.edges) {
      if (edges.length) this.edges.set(name, edges);
      else this.edges.delete(name);
    }
    const order = [...graph.inputs.map((n) => `in:${n}`)];
    for (const node of graph.nodes) if (this.boxes.has(node.id)) order.push(node.id);
    for (const n of graph.outputs) order.push(`out:${n}`);
    const index = new Map(order.map((id, i) => [id, i]));
    if (index.size !== this.boxes.size || order.some((id) => !this.boxes.has(id))) {
      throw new Error("the layout delta does not match the graph");
    }
    const edges = [];
    for (const list of this.edges.values()) {
      for (const e of list) edges.push({ ...e, from: index.get(e.from), to: index.get(e.to) });
    }
    return {
      nodes: order.map((id) => this.boxes.get(id)),
      edges,
      stubs: delta.stubs.map((s) => ({ ...s, to: index.get(s.to) })),
      broadcast: delta.broadcast, width: delta.width, height: delta.height, incremental: delta.incremental,
      version: delta.version, scope: [],
    };
  }
}
