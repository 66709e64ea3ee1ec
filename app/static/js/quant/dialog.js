// The "Analyse quantization" dialog: calibration data (.npz/.npy arrays, or images with their
// preprocessing: size, channel order, mean, scale or std, layout), the toolkit to simulate (Acuity,
// RKNN or onnxruntime: its quantizers, int16 and fused layers), quantizer, qtype and algorithms.
// While the job runs the dialog shows its progress; Cancel stops the job, Escape only hides the
// dialog (the dock keeps the progress bar and its own Cancel).
import { h } from "../core/dom.js";
import { openDialog } from "../core/dialog.js";
import { vocabulary } from "../core/vocabulary.js";

const IMAGE = /\.(png|jpe?g|bmp|gif|tiff?|webp|ppm|pgm)$/i;

function field(label, control, hint) {
  return [
    h("span", { class: "k", text: label }),
    h("span", {}, control, hint ? h("span", { class: "muted", text: ` ${hint}` }) : null),
  ];
}

// a <select> of [value, label] options, the first one chosen
function choice(id, options) {
  return h("select", { id }, options.map(([value, label]) => h("option", { value }, label)));
}

function numbers(text) {
  const t = text.trim();
  if (!t) return null;
  const v = t.split(/[\s,]+/).filter(Boolean).map(Number);
  if (v.some((x) => !Number.isFinite(x))) throw new Error(`'${text}' is not a list of numbers`);
  return v;
}

// Returns the dialog's promise; ui is the QuantUI that starts and follows the job.
export function analyseDialog(ui) {
  const app = ui.app;
  const inputs = app.view.graph.inputs.filter((n) => !(app.view.graph.initializers || {})[n]);
  const firstShape = app.model.tensor(inputs[0])?.shape || [];
  const dynamic = inputs.some((n) => (app.model.tensor(n)?.shape || []).some((d) => typeof d !== "number"));
  const files = h("input", { type: "file", id: "quant-files", multiple: true, accept: ".npz,.npy,.zip,image/*" });
  const source = choice("quant-source", [["files", "files"], ["random", "random data (synthetic)"]]);
  const randomN = h("input", {
    type: "number",
    id: "quant-random",
    min: "1",
    step: "1",
    value: "4",
    style: "width:80px",
  });
  const kind = h("span", { class: "muted", id: "quant-data-kind" });
  // preprocessing of images
  const size = h("input", {
    type: "text",
    id: "quant-size",
    style: "width:120px",
    value: firstShape.length === 4 && typeof firstShape[2] === "number" ? `${firstShape[2]}x${firstShape[3]}` : "",
    placeholder: "HxW, e.g. 640x640",
  });
  const order = choice("quant-order", [["rgb", "RGB"], ["bgr", "BGR"]]);
  const mean = h("input", { type: "text", id: "quant-mean", value: "123.675, 116.28, 103.53", style: "width:200px" });
  const scaleKind = choice("quant-scale-kind", [["std", "std (divide)"], ["scale", "scale (multiply)"]]);
  const scale = h("input", { type: "text", id: "quant-scale", value: "58.395, 57.12, 57.375", style: "width:200px" });
  const layout = choice("quant-layout", [["", "from the input shape"], ["nchw", "NCHW"], ["nhwc", "NHWC"]]);
  const imageBox = h("div", { class: "kv", id: "quant-image-fields", hidden: true },
    field("size", size, "images are resized to it"), field("channel order", order), field("mean", mean, "per channel"),
    field("", h("span", {}, scaleKind, " ", scale)), field("layout", layout));
  // the toolkit whose arithmetic and layers the analysis simulates: the server's names, told here
  const { toolkits, default_toolkit: defaultToolkit, algorithms } = vocabulary().quant;
  const TOOLKITS = {
    acuity: ["Acuity (pegasus quantize)", "uint8 asymmetric_affine layers; int16 = dynamic_fixed_point-i16 weights " +
      "and activations (power-of-two scales); Conv+BN+activation fused"],
    rknn: ["RKNN-Toolkit2",
      "w8a8 (int8 asymmetric, per-channel weights); int16 = w16a16i weights and activations; Conv+BN+activation fused"],
    onnxruntime: ["onnxruntime",
      "a QDQ model as onnxruntime's quantizer writes it: every tensor quantized, int16 activations with uint8 weights"],
  };
  const target = choice("quant-target", toolkits.map((k) => [k, TOOLKITS[k]?.[0] ?? k]));
  target.value = defaultToolkit;
  const targetHint = h("span", { class: "muted", id: "quant-target-hint" });
  // quantizer and algorithms
  const quantizer = choice("quant-quantizer", [
    ["asymmetric_affine", "asymmetric_affine (zero point; Acuity/RKNN default)"],
    ["symmetric_affine", "symmetric_affine (zero point 0)"],
  ]);
  const qtype = choice("quant-qtype", [["uint8", "uint8"], ["int8", "int8"]]);
  quantizer.addEventListener("change", () => {
    qtype.value = quantizer.value === "asymmetric_affine" ? "uint8" : "int8";
  });
  const perChannel = h("input", { type: "checkbox", id: "quant-per-channel" });
  const int16Weights = h("input", { type: "checkbox", id: "quant-int16-weights" });
  const algo = (name, label, extra) =>
    h(
      "label",
      { class: "check" },
      h("input", { type: "checkbox", "data-algorithm": name, checked: true, disabled: name === "minmax" }),
      ` ${label}`,
      extra || null,
    );
  const percentile = h("input", {
    type: "number",
    id: "quant-percentile",
    value: "99.99",
    step: "0.01",
    min: "50.01",
    max: "100",
    style: "width:80px",
  });
  const klMethod = choice("quant-kl-method", [["tensorrt", "TensorRT"], ["onnxruntime", "onnxruntime"]]);
  // each of the server's algorithms, with its own setting where it has one
  const ALGORITHM_FIELDS = {
    minmax: ["Min-Max"], kl: ["KL entropy ", klMethod], percentile: ["percentile ", percentile], mse: ["MSE"],
  };
  const algos = h("div", { class: "checks" }, algorithms.map((a) => algo(a, ...(ALGORITHM_FIELDS[a] || [a]))));
  const hybrid = h("input", { type: "checkbox", id: "quant-hybrid", checked: true });
  const margin = h("input", {
    type: "number",
    id: "quant-margin",
    value: "3",
    step: "0.5",
    min: "0",
    style: "width:70px",
  });
  const base = choice("quant-base", [["", "the better one"], ["uint8/minmax", "Min-Max"], ["uint8/kl", "KL"]]);
  const progress = h("progress", { id: "quant-progress", max: "1", value: "0" });
  const progressText = h("span", { class: "muted", id: "quant-progress-text" });
  const progressBox = h("div", { class: "quant-progress", hidden: true }, progress, progressText);

  const refresh = () => {
    const list = [...files.files];
    const random = source.value === "random";
    files.hidden = random;
    randomN.hidden = !random;
    const images = !random && list.length > 0 && list.every((f) => IMAGE.test(f.name) || /\.zip$/i.test(f.name));
    imageBox.hidden = !(images || (random && dynamic));
    kind.textContent = random
      ? "the report is marked synthetic"
      : !list.length
        ? ".npz keyed by input name (samples on the first axis), .npy, or images"
        : images
          ? `${list.length} image file(s): set the preprocessing below`
          : "arrays, fed to the model as they are";
  };
  files.addEventListener("change", refresh);
  source.addEventListener("change", refresh);
  refresh();
  const weightOptions = h("div", { class: "kv", id: "quant-weight-options" },
    field("weights", h("label", { class: "check" }, perChannel, " per-channel scales")),
    field("int16 layers", h("label", { class: "check" }, int16Weights, " int16 weights too (W16A16, as Acuity/RKNN)"),
      "default: weights stay uint8"));
  const refreshTarget = () => {
    targetHint.textContent = TOOLKITS[target.value]?.[1] ?? "";
    weightOptions.hidden = target.value !== "onnxruntime"; // the NPU toolkits fix their weights' grids
  };
  target.addEventListener("change", refreshTarget);
  refreshTarget();

  const body = h(
    "div",
    { class: "quant-dialog" },
    dynamic
      ? h(
          "p",
          { class: "pill warn", id: "quant-dynamic-warning" },
          "The model has dynamic dims: fix them first (Edit \u2192 Fix dims) or give the image size.",
        )
      : null,
    h("h3", { text: "Calibration data" }),
    h("div", { class: "kv" }, field("source", source), field("data", h("span", {}, files, randomN)), field("", kind)),
    imageBox,
    h("h3", { text: "Toolkit" }),
    h("div", { class: "kv" }, field("simulate", target), field("", targetHint)),
    h("h3", { text: "Quantizer" }),
    h("div", { class: "kv" }, field("quantizer", quantizer), field("qtype", qtype, "and int16 for the hybrid")),
    weightOptions,
    h("h3", { text: "Clip-range algorithms" }),
    algos,
    h("h3", { text: "Hybrid uint8/int16" }),
    h(
      "div",
      { class: "kv" },
      field("search", h("label", { class: "check" }, hybrid, " measure end to end and recommend int16 tensors")),
      field("target", h("span", {}, "within ", margin, " dB of all-int16")),
      field("base", base),
    ),
    progressBox,
  );

  let job = null;
  let closed = null;
  const whenClosed = new Promise((resolve) => { closed = resolve; });
  const CLOSED = {};
  const onState = (st) => {
    progressBox.hidden = false;
    progress.value = st.progress || 0;
    progressText.textContent = ` ${Math.round((st.progress || 0) * 100)} % ${st.message || st.state}`;
  };
  const promise = openDialog({
    title: "Analyse quantization",
    wide: true,
    body,
    submitLabel: "Analyse",
    onSubmit: async () => {
      const random = source.value === "random";
      const list = [...files.files];
      if (!random && !list.length) throw new Error("choose calibration files (.npz, .npy or images), or random data");
      const algorithms = [...algos.querySelectorAll("[data-algorithm]")]
        .filter((c) => c.checked)
        .map((c) => c.dataset.algorithm);
      const sizeText = size.value.trim();
      let hw = null;
      if (!imageBox.hidden && sizeText) {
        hw = sizeText.toLowerCase().split(/[x,\s]+/).filter(Boolean).map(Number);
        if (hw.length !== 2 || hw.some((d) => !Number.isInteger(d) || d < 1))
          throw new Error(`size '${sizeText}' is not HxW`);
      }
      const settings = {
        target: target.value,
        quantizer: quantizer.value,
        qtype: qtype.value,
        per_channel: target.value === "onnxruntime" && perChannel.checked,
        int16_weights: target.value === "onnxruntime" && int16Weights.checked,
        algorithms,
        percentile: Number(percentile.value),
        kl_method: klMethod.value,
        end_to_end: hybrid.checked,
        target_margin_db: Number(margin.value),
        hybrid_base: base.value || null,
        random: random ? Number(randomN.value) : null,
        preprocess: imageBox.hidden
          ? null
          : {
              size: hw,
              channel_order: order.value,
              mean: numbers(mean.value),
              [scaleKind.value]: numbers(scale.value),
              layout: layout.value || null,
            },
      };
      document.getElementById("dialog-submit").disabled = true;
      progressBox.hidden = false;
      progressText.textContent = " uploading\u2026";
      job = await ui.start(random ? [] : list, settings, onState);
      // the dock follows the job too; once the dialog is closed (Escape, Cancel) this submit never
      // settles, so it cannot close a dialog opened later
      const final = await Promise.race([ui.follow(job, onState), whenClosed.then(() => CLOSED)]);
      if (final === CLOSED) return new Promise(() => {});
      if (final.state !== "succeeded") throw new Error(final.error?.message || `the analysis ${final.state}`);
      return final;
    },
  });
  // Cancel while the job runs stops the job too (the dialog's own handler closes it)
  document.getElementById("dialog-cancel").addEventListener("click", () => {
    if (job && !ui.finished(job)) ui.cancel(job);
  });
  return promise.then((r) => {
    closed();
    if (r || (job && !ui.finished(job))) ui.showDock("layers");
    return r;
  });
}
