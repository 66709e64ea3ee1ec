// The dock's "Layers" tab: one row per quantization point, with its ranges, SQNR per configuration,
// where its error is born and its precision toggle; sorted, filtered, a row finds its node.
import { h } from "../core/dom.js";
import { rangeGlyph } from "./charts.js";
import { errorConfig, errorDb, sensitivityOf, tensorSqnr } from "./heatmap.js";
import { cosineTint, thresholdsOf } from "./verdict.js";

const TABLE_LIMIT = 1500;

function sqnrTint(db) {
  if (db < 20) return "#fde2e1";
  if (db < 30) return "#fff1d6";
  if (db < 40) return "#fbfbe3";
  return "";
}

export function tableColumns(ui) {
  const q = ui.qtype;
  const report = ui.result.report;
  const config = errorConfig(report);
  const cos = (v) => (v === 1 ? "1" : v.toFixed(4));
  const limits = thresholdsOf(report);
  // where the error is born (issue 14): only for a report that measured it
  const born = [
    report.accumulated
      ? {
          key: "acc/cosine",
          label: "acc cos",
          value: (r) => r.acc?.cosine ?? null,
          num: true,
          format: cos,
          tint: (v) => cosineTint(v, limits),
          title: `accumulated: the fully quantized model (${config}) against the float model, at ui point`,
        }
      : null,
    report.accumulated
      ? {
          key: "acc/sqnr",
          label: "acc dB",
          value: (r) => errorDb(r.acc),
          num: true,
          title: `accumulated SQNR: the fully quantized model (${config}) against the float model, at ui point`,
        }
      : null,
    report.local
      ? {
          key: "local",
          label: "local dB",
          value: (r) => errorDb(r.local),
          num: true,
          title: `local SQNR: ui layer quantized alone (${config}, weights and output), fed float inputs`,
        }
      : null,
    report.sensitivity
      ? {
          key: "sens",
          label: "sens dB",
          value: (r) => r.sens?.db ?? null,
          num: true,
          title:
            "worst model-output SQNR when only ui point's activation is quantized (lower: the point matters more)",
        }
      : null,
    report.sensitivity
      ? {
          key: "sens/rank",
          label: "sens #",
          value: (r) => r.sens?.rank ?? null,
          num: true,
          format: (v) => `#${v}`,
          tint: null,
          title: "rank by sensitivity, 1 = hurts the outputs most",
        }
      : null,
  ].filter(Boolean);
  return [
    { key: "tensor", label: "tensor", value: (r) => r.name, cls: "mono name" },
    { key: "op", label: "op", value: (r) => r.op || "" },
    {
      key: "range",
      label: "range per algorithm",
      value: (r) => (r.entry.ranges?.minmax ? r.entry.ranges.minmax[1] - r.entry.ranges.minmax[0] : null),
    },
    { key: `${q}/minmax`, label: `${q} Min-Max dB`, value: (r) => tensorSqnr(r.entry, `${q}/minmax`), num: true },
    { key: `${q}/kl`, label: `${q} KL dB`, value: (r) => tensorSqnr(r.entry, `${q}/kl`), num: true },
    { key: "int16/minmax", label: "int16 dB", value: (r) => tensorSqnr(r.entry, "int16/minmax"), num: true },
    ...born,
    {
      key: "outlier",
      label: "weight outliers",
      value: (r) => r.outlier,
      num: true,
      tint: null,
      title: "max |w| / std of the node's weights",
    },
    { key: "precision", label: "precision", value: (r) => (ui.int16.has(r.name) ? 1 : 0) },
  ];
}

export function tableRows(ui) {
  const report = ui.result.report;
  const recommended = new Set(report.recommendation?.int16 || []);
  const sens = sensitivityOf(report);
  return Object.entries(report.tensors).map(([name, entry], index) => {
    const node = ui.producerOf(name);
    return {
      name,
      entry,
      index,
      node,
      op: entry.op_type || ui.app.model.node(node)?.op_type || (node ? "" : "input"),
      outlier: node ? ui.outlierOfNode(node) : null,
      recommended: recommended.has(name),
      acc: report.accumulated?.[name],
      local: report.local?.[name],
      sens: sens.get(name),
    };
  });
}

export function renderLayers(ui, body) {
  const cols = tableColumns(ui);
  let rows = tableRows(ui);
  const f = ui.filter.trim().toLowerCase();
  if (f)
    rows = rows.filter(
      (r) =>
        r.name.toLowerCase().includes(f) ||
        (r.op || "").toLowerCase().includes(f) ||
        (r.node || "").toLowerCase().includes(f),
    );
  if (ui.onlyInt16) rows = rows.filter((r) => ui.int16.has(r.name));
  const col = cols.find((c) => c.key === ui.sort.key);
  if (col) {
    const dir = ui.sort.dir;
    rows.sort((a, b) => {
      const va = col.value(a), vb = col.value(b);
      const na = va === null || va === undefined, nb = vb === null || vb === undefined;
      if (na || nb) return na === nb ? a.index - b.index : na ? 1 : -1; // no value: always last
      if (typeof va === "string") return dir * va.localeCompare(vb) || a.index - b.index;
      return dir * (va - vb) || a.index - b.index;
    });
  }
  const filter = h("input", {
    type: "search",
    id: "q-filter",
    placeholder: "filter by tensor, node or op",
    value: ui.filter,
  });
  filter.addEventListener("input", () => {
    ui.filter = filter.value;
    clearTimeout(ui.filterTimer);
    ui.filterTimer = setTimeout(() => {
      ui.renderBody();
      const el = document.getElementById("q-filter");
      el.focus();
      el.setSelectionRange(el.value.length, el.value.length);
    }, 150);
  });
  const only = h("input", { type: "checkbox", id: "q-only-int16", checked: ui.onlyInt16 });
  only.addEventListener("change", () => { ui.onlyInt16 = only.checked; ui.renderBody(); });
  body.append(
    h(
      "div",
      { class: "row table-tools" },
      filter,
      h("label", { class: "check" }, only, " int16 only"),
      h("span", {
        class: "muted",
        id: "q-count",
        text: `${rows.length} tensor(s)${rows.length > TABLE_LIMIT ? `, first ${TABLE_LIMIT} shown` : ""}`,
      }),
      h("span", { class: "muted" }, "Click a column to sort, a row to find its node in the graph."),
    ),
  );
  const head = h(
    "tr",
    {},
    cols.map((c) =>
      h(
        "th",
        {
          "data-key": c.key,
          class: `${c.num ? "num" : ""} ${ui.sort.key === c.key ? (ui.sort.dir > 0 ? "asc" : "desc") : ""}`,
          title: c.title || `sort by ${c.label}`,
          onclick: () => {
            ui.sort = { key: c.key, dir: ui.sort.key === c.key ? -ui.sort.dir : 1 };
            ui.renderBody();
          },
        },
        c.label,
      ),
    ),
  );
  const tbody = h("tbody");
  const selected = new Set(ui.app.selection.nodes);
  for (const r of rows.slice(0, TABLE_LIMIT)) {
    const layer = r.entry.layer?.length ? r.entry.layer : [r.node];
    const tr = h("tr", { "data-tensor": r.name, "data-node": r.node || "", "data-layer": layer.join("\n"),
      class: layer.some((n) => selected.has(n)) || ui.app.selection.tensor === r.name ? "selected" : "" });
    tr.addEventListener("click", (e) => { if (!e.target.closest("button, select, input")) ui.goTo(r); });
    for (const c of cols) {
      let content;
      if (c.key === "range") content = rangeGlyph(ui.rangesShown(r.entry), { width: 110 });
      else if (c.key === "precision") content = ui.precisionToggle(r.name, r.recommended);
      else if (c.num) {
        const v = c.value(r);
        content =
          v === null || v === undefined
            ? "\u2013"
            : v === Infinity
              ? "\u221e"
              : c.format
                ? c.format(v)
                : v.toFixed(1);
      } else content = c.value(r);
      const td = h(
        "td",
        {
          class: `${c.cls || ""} ${c.num ? "num" : ""}`,
          title: c.key === "tensor" ? r.name : null,
          "data-col": c.key,
        },
        content,
      );
      const tint = c.tint === undefined ? sqnrTint : c.tint;
      if (c.num && tint) {
        const v = c.value(r);
        if (v !== null && v !== undefined) td.style.background = tint(v);
      }
      tr.append(td);
    }
    tbody.append(tr);
  }
  body.append(
    h("div", { class: "table-wrap" }, h("table", { class: "qtable", id: "q-table" }, h("thead", {}, head), tbody)),
  );
}
