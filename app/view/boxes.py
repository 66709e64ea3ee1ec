"""What each box and edge of a drawing shows, and how big a box is.

Netron's picture: initializers, and Constant nodes read by a single node, are rows of their reader's
box ("W <32x3x3x3>"), so weights do not become thousands of sources in the first layer; then the key
attributes. Box sizes follow from the text and BOX_METRICS, which the page draws with as well.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import onnx

BOX_METRICS: dict[str, float | int] = {
    "char_w": 6.6,  # average advance of the 11px UI font
    "title_h": 20,  # the title band
    "row_h": 14,  # each row under the title
    "rows_pad": 4,  # added under the title when a box has rows (half above them, half below)
    "pad_x": 8,  # left and right padding of the text
    "min_w": 56,
    "max_w": 280,
    "max_attr_rows": 4,  # attributes shown in the box; the sidebar shows all of them
    "max_row_chars": 40,  # a longer value is cut with an ellipsis
}
"""Box metrics in pixels (and counts of rows and characters): the one source of the sizes the server
lays out with and the page draws with, so a box's text fits the box the layout made room for."""

CATEGORIES: dict[str, tuple[str, ...]] = {
    "layer": (
        "Conv",
        "ConvTranspose",
        "ConvInteger",
        "Gemm",
        "MatMul",
        "MatMulInteger",
        "QLinearConv",
        "QLinearMatMul",
        "FusedConv",
        "FusedGemm",
        "FusedMatMul",
        "Attention",
        "MultiHeadAttention",
        "LSTM",
        "GRU",
        "RNN",
        "Einsum",
        "DeformConv",
        "EmbedLayerNormalization",
    ),
    "activation": (
        "Relu",
        "LeakyRelu",
        "PRelu",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Elu",
        "Selu",
        "Celu",
        "Gelu",
        "FastGelu",
        "BiasGelu",
        "QuickGelu",
        "Softplus",
        "Softsign",
        "Mish",
        "Swish",
        "Softmax",
        "LogSoftmax",
        "Hardmax",
        "ThresholdedRelu",
        "Clip",
        "Erf",
    ),
    "pool": (
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "LpPool",
        "GlobalLpPool",
        "MaxRoiPool",
        "RoiAlign",
        "MaxUnpool",
    ),
    "normalization": (
        "BatchNormalization",
        "LayerNormalization",
        "InstanceNormalization",
        "GroupNormalization",
        "LpNormalization",
        "LRN",
        "MeanVarianceNormalization",
        "SkipLayerNormalization",
        "SimplifiedLayerNormalization",
        "SkipSimplifiedLayerNormalization",
        "RMSNormalization",
        "Dropout",
    ),
    "shape": (
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Transpose",
        "Shape",
        "Size",
        "Concat",
        "Split",
        "Slice",
        "Gather",
        "GatherElements",
        "GatherND",
        "Scatter",
        "ScatterElements",
        "ScatterND",
        "Expand",
        "Tile",
        "Pad",
        "Resize",
        "Upsample",
        "DepthToSpace",
        "SpaceToDepth",
        "Identity",
        "Cast",
        "CastLike",
        "ConstantOfShape",
        "Range",
        "NonZero",
        "Where",
        "TopK",
        "Compress",
        "OneHot",
        "Trilu",
        "SplitToSequence",
        "SequenceAt",
        "SequenceConstruct",
        "ConcatFromSequence",
        "ReverseSequence",
    ),
    "quantization": (
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "QLinearAdd",
        "QLinearMul",
        "QLinearSigmoid",
        "QLinearLeakyRelu",
        "QLinearConcat",
        "QLinearAveragePool",
        "QLinearGlobalAveragePool",
        "QGemm",
        "DynamicQuantizeMatMul",
        "MatMulIntegerToFloat",
        "MatMulNBits",
    ),
    "control": ("If", "Loop", "Scan"),
    "constant": ("Constant",),
}
_CATEGORY_OF = {op: cat for cat, ops in CATEGORIES.items() for op in ops}
_STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")

# Attributes worth showing in the box first, Netron-style; the sidebar shows all of them.
_KEY_ATTRIBUTES = (
    "kernel_shape",
    "strides",
    "pads",
    "dilations",
    "group",
    "perm",
    "axis",
    "axes",
    "alpha",
    "beta",
    "epsilon",
    "to",
    "mode",
    "transA",
    "transB",
    "keepdims",
    "split",
)


def category(op_type: str, domain: str) -> str:
    if domain not in _STANDARD_DOMAINS:
        return "custom"
    return _CATEGORY_OF.get(op_type, "custom" if domain == "com.microsoft" else "other")


@lru_cache(maxsize=4096)
def _input_names(op_type: str, domain: str) -> tuple[str, ...]:
    """Formal input names of an operator (W, B, ...), for the rows of folded weights."""
    try:
        schema = onnx.defs.get_schema(op_type, onnx.defs.onnx_opset_version(), domain)
    except onnx.defs.SchemaError:
        return ()
    return tuple(i.name for i in schema.inputs)


def shape_label(shape: list[Any] | None) -> str:
    if shape is None:
        return ""
    return "\u00d7".join("?" if d is None else str(d) for d in shape) if shape else "scalar"


def name_label(name: str) -> str:
    return name if len(name) <= 28 else "\u2026" + name[-27:]


def _short(value: Any) -> str:
    if isinstance(value, dict):
        if "graph" in value:
            return f"graph ({value.get('nodes', 0)} nodes)"
        return f"{value.get('dtype', '')}\u27e8{shape_label(value.get('shape'))}\u27e9"
    if isinstance(value, list):
        text = ", ".join(_short(v) for v in value[:8]) + (", \u2026" if len(value) > 8 else "")
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    limit = int(BOX_METRICS["max_row_chars"])
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _box_width(title: str, rows: list[list[str]]) -> float:
    longest = max([len(title) + 2] + [len(k) + len(v) + 3 for k, v in rows])
    m = BOX_METRICS
    return float(min(m["max_w"], max(m["min_w"], longest * m["char_w"] + 2 * m["pad_x"])))


def is_folded(node: dict[str, Any], tensors: dict[str, Any], outputs: set[str]) -> bool:
    """A Constant node read by exactly one node (and not a graph output) becomes a row of that node."""
    if node["op_type"] != "Constant" or len(node["outputs"]) != 1 or node.get("subgraphs"):
        return False
    out = node["outputs"][0]
    return len(set(tensors.get(out, {}).get("consumers", ()))) == 1 and out not in outputs


def io_box(name: str, kind: str, tensors: dict[str, Any]) -> dict[str, Any]:
    """The box of a graph input or output (kind "input" or "output"): its dtype and shape."""
    t = tensors.get(name, {})
    rows = [["", f"{t.get('dtype') or ''}[{shape_label(t.get('shape'))}]"]]
    box = {
        "id": ("in:" if kind == "input" else "out:") + name,
        "kind": kind,
        "title": name,
        "cat": kind,
        "rows": rows,
        "tensor": name,
    }
    return _sized(box)


def op_box(node: dict[str, Any], graph: dict[str, Any], folded: set[str]) -> dict[str, Any]:
    """A node's box: weight rows for initializers and folded Constants it reads, then key attributes."""
    tensors, initializers = graph["tensors"], graph.get("initializers", {})
    rows: list[list[str]] = []
    formal = _input_names(node["op_type"], node["domain"])
    for pos, name in enumerate(node["inputs"]):
        weight = initializers.get(name)
        if weight is None and name:
            producer = tensors.get(name, {}).get("producer")
            if producer in folded:
                weight = tensors[name]
        if weight is not None:
            label = formal[pos] if pos < len(formal) else f"in{pos}"
            rows.append([label, f"\u27e8{shape_label(weight.get('shape'))}\u27e9"])
    attrs = node.get("attributes", {})
    keys = [k for k in _KEY_ATTRIBUTES if k in attrs] + [k for k in attrs if k not in _KEY_ATTRIBUTES]
    for key in keys[: int(BOX_METRICS["max_attr_rows"])]:
        rows.append([key, _short(attrs[key])])
    box = {
        "id": node["id"],
        "kind": "op",
        "title": node["op_type"],
        "name": node["name"],
        "cat": category(node["op_type"], node["domain"]),
        "rows": rows,
    }
    if node.get("subgraphs"):
        box["bodies"] = [[s["attribute"], s["index"]] for s in node["subgraphs"]]
    if "ref" in node:
        box["ref"] = node["ref"]
    return _sized(box)


def _sized(box: dict[str, Any]) -> dict[str, Any]:
    m = BOX_METRICS
    box["w"] = _box_width(box["title"], box["rows"])
    box["h"] = float(m["title_h"] + m["row_h"] * len(box["rows"]) + (m["rows_pad"] if box["rows"] else 0))
    return box


def edge(name: str, source: str, target: str, slot: int, route: list[float], tensors: dict[str, Any]) -> dict[str, Any]:
    """An edge of tensor `name` from box `source` to the `slot`th input of box `target`, labelled with its shape."""
    return {
        "t": name,
        "from": source,
        "to": target,
        "slot": slot,
        "pts": route,
        "label": shape_label(tensors.get(name, {}).get("shape")),
    }
