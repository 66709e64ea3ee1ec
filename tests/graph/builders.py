"""Small models built with onnx.helper for exact edit tests, and a runner to compare outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from app.graph import ModelDocument, load_model


def chain_model() -> onnx.ModelProto:
    """x -> Conv(W,B) -> Relu -> Identity -> Add(C) -> y, plus an unnamed Sigmoid side branch to z."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "B")
    c = numpy_helper.from_array(np.float32(0.5), "C")
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["conv_out"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv_out"], ["relu_out"], name="relu"),
        helper.make_node("Identity", ["relu_out"], ["id_out"], name="ident"),
        helper.make_node("Add", ["id_out", "C"], ["y"], name="add"),
        helper.make_node("Sigmoid", ["conv_out"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, 8, 8]),
        ],
        [w, b, c],
        value_info=[helper.make_tensor_value_info("relu_out", TensorProto.FLOAT, [1, 4, 8, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="test")
    model.ir_version = 8
    helper.set_model_props(model, {"author": "tests"})
    onnx.checker.check_model(model)
    return model


def matmul_model(weight: np.ndarray) -> onnx.ModelProto:
    """y = x @ W with W an initializer: a model whose size is its weight, for storage tests."""
    rows, cols = weight.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cols])],
        [numpy_helper.from_array(weight, "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def doc_of(model: onnx.ModelProto, tmp_path: Path, name: str = "m.onnx") -> ModelDocument:
    path = tmp_path / name
    onnx.save_model(model, path)
    return load_model(path)


def snapshot(doc: ModelDocument) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(doc.model)
    return copy


def feeds_for(model: onnx.ModelProto, seed: int = 0, sizes: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Random inputs matching the model's input types; symbolic dims take `sizes` or 1."""
    rng = np.random.default_rng(seed)
    initializers = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in initializers:
            continue
        tensor_type = vi.type.tensor_type
        shape = [
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (sizes or {}).get(d.dim_param, 1)
            for d in tensor_type.shape.dim
        ]
        dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        if dtype.kind == "f":
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[vi.name] = rng.integers(0, 5, shape).astype(dtype)
    return feeds


def run(model: onnx.ModelProto | str | Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def yolo_like_model(batch: str = "batch", height: str = "height", width: str = "width") -> onnx.ModelProto:
    """A YOLOv8-shaped detector as exporters write it with dynamic batch, height and width: strided
    Conv+SiLU stages, two heads flattened by Reshape to a shape computed with Shape -> Gather ->
    Unsqueeze -> Concat, concatenated anchors, sigmoid class scores; the declared output and
    value_info carry the exporter's formulas for the dims."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def weight(name: str, shape: tuple[int, ...]) -> str:
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name))
        return name

    def conv_silu(x: str, name: str, cin: int, cout: int, stride: int) -> str:
        nodes.extend(
            [
                helper.make_node(
                    "Conv",
                    [x, weight(f"{name}.w", (cout, cin, 3, 3)), weight(f"{name}.b", (cout,))],
                    [f"{name}.conv"],
                    name=f"/{name}/conv/Conv",
                    pads=[1, 1, 1, 1],
                    strides=[stride] * 2,
                ),
                helper.make_node("Sigmoid", [f"{name}.conv"], [f"{name}.sig"], name=f"/{name}/act/Sigmoid"),
                helper.make_node("Mul", [f"{name}.conv", f"{name}.sig"], [f"{name}.out"], name=f"/{name}/act/Mul"),
            ]
        )
        return f"{name}.out"

    inits += [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([6, -1], np.int64), "rest"),
        numpy_helper.from_array(np.array([0], np.int64), "axes0"),
    ]
    f1 = conv_silu(conv_silu("images", "m0", 3, 8, 2), "m1", 8, 8, 2)
    f2 = conv_silu(f1, "m2", 8, 8, 2)
    heads = []
    for i, feat in enumerate((f1, f2)):
        nodes.extend(
            [
                helper.make_node(
                    "Conv",
                    [feat, weight(f"h{i}.w", (6, 8, 1, 1)), weight(f"h{i}.b", (6,))],
                    [f"h{i}.out"],
                    name=f"/head/cv{i}/Conv",
                ),
                helper.make_node("Shape", [f"h{i}.out"], [f"h{i}.shape"], name=f"/head/Shape_{i}"),
                helper.make_node("Gather", [f"h{i}.shape", "zero"], [f"h{i}.n"], name=f"/head/Gather_{i}", axis=0),
                helper.make_node("Unsqueeze", [f"h{i}.n", "axes0"], [f"h{i}.n1"], name=f"/head/Unsqueeze_{i}"),
                helper.make_node("Concat", [f"h{i}.n1", "rest"], [f"h{i}.target"], name=f"/head/Concat_{i}", axis=0),
                helper.make_node("Reshape", [f"h{i}.out", f"h{i}.target"], [f"h{i}.flat"], name=f"/head/Reshape_{i}"),
            ]
        )
        heads.append(f"h{i}.flat")
    inits.append(numpy_helper.from_array(np.array([4, 2], np.int64), "split"))
    nodes.extend(
        [
            helper.make_node("Concat", heads, ["anchors"], name="/head/Concat_all", axis=2),
            helper.make_node("Split", ["anchors", "split"], ["box", "cls"], name="/head/Split", axis=1),
            helper.make_node("Sigmoid", ["cls"], ["scores"], name="/head/Sigmoid"),
            helper.make_node("Concat", ["box", "scores"], ["output0"], name="/head/Concat_out", axis=1),
        ]
    )
    anchors = f"floor(floor({height}/4)*floor({width}/4)) + floor({height}/8)*floor({width}/8)"
    graph = helper.make_graph(
        nodes,
        "yolo_like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, height, width])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 6, anchors])],
        inits,
        value_info=[
            helper.make_tensor_value_info(
                "m1.out", TensorProto.FLOAT, [batch, 8, f"floor({height}/4)", f"floor({width}/4)"]
            ),
            helper.make_tensor_value_info("anchors", TensorProto.FLOAT, [batch, 6, anchors]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pytorch")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def detector_with_tail(kind: str) -> onnx.ModelProto:
    """yolo_like_model with the post-processing exporters append: 'topk' (YOLO26/v10 style, a constant
    k, scores reduced per anchor, boxes and scores gathered) or 'nms' (NonMaxSuppression over decoded
    boxes, then the selected boxes gathered)."""
    model = yolo_like_model(batch="1", height="320", width="320")
    graph = model.graph
    for vi in [*graph.input, *graph.output, *graph.value_info]:  # a static export
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param.isdigit():
                d.dim_value = int(d.dim_param)
    del graph.output[:]
    del graph.value_info[:]
    add = graph.node.extend
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([4, 2], np.int64), "box_cls"),
            numpy_helper.from_array(np.array(2.0, np.float32), "half"),
            numpy_helper.from_array(np.array([10], np.int64), "k"),
        ]
    )
    add(
        [
            helper.make_node("Transpose", ["output0"], ["preds"], name="/post/Transpose", perm=[0, 2, 1]),
            helper.make_node("Split", ["preds", "box_cls"], ["xywh", "cls_scores"], name="/post/Split", axis=2),
            helper.make_node("Div", ["xywh", "half"], ["xywh_half"], name="/post/decode/Div"),
        ]
    )
    if kind == "topk":
        add(
            [
                helper.make_node("ReduceMax", ["cls_scores"], ["best"], name="/post/ReduceMax", keepdims=0, axes=[2]),
                helper.make_node("TopK", ["best", "k"], ["top_scores", "top_idx"], name="/post/TopK", axis=1),
                helper.make_node("Unsqueeze", ["top_idx", "last"], ["idx3"], name="/post/Unsqueeze"),
                helper.make_node("Expand", ["idx3", "four"], ["idx4"], name="/post/Expand"),
                helper.make_node(
                    "GatherElements", ["xywh_half", "idx4"], ["dets"], name="/post/GatherElements", axis=1
                ),
            ]
        )
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.array([2], np.int64), "last"),
                numpy_helper.from_array(np.array([1, 10, 4], np.int64), "four"),
            ]
        )
        model.opset_import[0].version = 13  # ReduceMax takes axes as an attribute
        graph.output.extend(
            [
                helper.make_tensor_value_info("dets", TensorProto.FLOAT, [1, 10, 4]),
                helper.make_tensor_value_info("top_scores", TensorProto.FLOAT, [1, 10]),
            ]
        )
    else:
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.array([20], np.int64), "max_out"),
                numpy_helper.from_array(np.array([0.5], np.float32), "iou"),
                numpy_helper.from_array(np.array([0.2], np.float32), "score_min"),
                numpy_helper.from_array(np.array([2], np.int64), "col"),
            ]
        )
        add(
            [
                helper.make_node(
                    "Transpose", ["cls_scores"], ["scores_t"], name="/post/Transpose_scores", perm=[0, 2, 1]
                ),
                helper.make_node(
                    "NonMaxSuppression",
                    ["xywh_half", "scores_t", "max_out", "iou", "score_min"],
                    ["selected"],
                    name="/post/NMS",
                    center_point_box=1,
                ),
                helper.make_node("Gather", ["selected", "col"], ["picked"], name="/post/Gather_col", axis=1),
                helper.make_node("Squeeze", ["picked"], ["picked1"], name="/post/Squeeze"),
                helper.make_node("Gather", ["xywh_half", "picked1"], ["boxes"], name="/post/Gather_boxes", axis=1),
            ]
        )
        graph.output.extend([helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, "n", 4])])
    onnx.checker.check_model(model, full_check=True)
    return model
