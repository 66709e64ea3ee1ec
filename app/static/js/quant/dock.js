// The quantization dock's head: its tabs, the analysis it shows, the heat-map switch, and the
// progress of the running jobs with their Cancel buttons.
import { clear, h } from "../core/dom.js";
import { TERMINAL } from "./api.js";

export function renderHead(ui) {
  if (!ui.head || ui.dock.hidden) return;
  clear(ui.head);
  const r = ui.result;
  const depth = Boolean(r?.report.accumulated || r?.report.local);
  const tabs = h(
    "div",
    { class: "tabs", role: "tablist" },
    [
      ["layers", "Layers", true],
      ["depth", "Error by depth", depth],
      ["hybrid", "Hybrid and export", true],
    ].map(([key, label, has]) =>
      h(
        "button",
        {
          type: "button",
          role: "tab",
          class: ui.tab === key ? "tab on" : "tab",
          id: `q-tab-${key}`,
          disabled: !r || !has,
          title: has ? null : "This analysis did not measure the accumulated and local error: run it again",
          onclick: () => {
            ui.tab = key;
            ui.renderDock();
          },
        },
        label,
      ),
    ),
  );
  const heat = h("input", { type: "checkbox", id: "q-heatmap", checked: ui.heat.on, disabled: !r });
  heat.addEventListener("change", () => ui.setHeatmap(heat.checked));
  let info = "no analysis yet";
  if (r) {
    const rep = r.report;
    info = `${rep.samples} sample(s)${rep.synthetic ? " (synthetic)" : ""} \u00b7 ` +
      `${Object.keys(rep.tensors).length} tensors \u00b7 model v${r.version}`;
  }
  ui.progressBox = h("span", { class: "dock-progress" });
  ui.head.append(
    ...[
      h("b", { text: "Quantization" }),
      tabs,
      h("span", { class: "muted", id: "q-info", text: info }),
      r && r.version !== ui.app.version
        ? h(
            "span",
            {
              class: "pill warn",
              title: "The model was edited after the analysis; run it again to measure the current model.",
            },
            `the model is now v${ui.app.version}`,
          )
        : null,
      ui.progressBox,
      h("span", { class: "spacer" }),
      h("label", { class: "check" }, heat, " heat-map"),
      h(
        "button",
        { type: "button", id: "q-analyse", onclick: () => ui.openDialog() },
        r ? "Analyse again\u2026" : "Analyse quantization\u2026",
      ),
      h("button", { type: "button", class: "close", title: "Close", onclick: () => ui.hideDock() }, "\u00d7"),
    ].filter(Boolean),
  );
  renderProgress(ui);
}

export function renderProgress(ui) {
  const box = ui.progressBox;
  if (!box) return;
  clear(box);
  const jobs = [ui.job, ui.measureJob].filter((j) => j && !TERMINAL.includes(j.state));
  for (const j of jobs) {
    box.append(
      h("progress", { max: "1", value: String(j.progress || 0), class: "job-progress" }),
      h("span", { class: "muted", text: ` ${Math.round((j.progress || 0) * 100)} % ${j.message || j.state} ` }),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          id: j === ui.job ? "q-cancel" : "q-cancel-measure",
          onclick: () => ui.cancel(j.id),
        },
        "Cancel",
      ),
    );
  }
  if (ui.job && ["failed", "interrupted"].includes(ui.job.state)) {
    box.append(
      h("span", {
        class: "pill bad",
        id: "q-failed",
        text: `analysis ${ui.job.state}: ${ui.job.error?.message || ""}`,
      }),
    );
  }
}
