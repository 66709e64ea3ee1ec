"""What the analysis needs to know about a model: inputs, quantization points, weights.

A quantization point is a float32 activation tensor of the main graph the way the target
toolkit sees it: tensors computed only from constants count as weights. For an NPU toolkit a
point is the output of one of its layers (app.quant.layers: Conv+BN+activation fused, data
movement passing its input's grid through); for onnxruntime every tensor is one, except the
input of a Relu/Clip that is its producer's only consumer (ORT's QDQ quantizer fuses those; a control-flow
body reading the tensor from outside is a consumer too, as GraphIndex counts them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, helper, numpy_helper

from app.graph.errors import WorkbenchError
from app.graph.index import GraphIndex, has_subgraphs
from app.graph.io import has_external_data, map_tensor, read_model
from app.quant.errors import QuantError
from app.quant.layers import node_names, toolkit_layers
from app.quant.runtime import serialize
from app.runtime.inputs import InputSpec
from app.runtime.inputs import input_specs as runtime_input_specs

#: Activations that NPU compilers fuse into the producing Conv/Gemm/Add.
FUSED_ACTIVATIONS = {"Relu", "Clip"}
#: Ops whose constant float input at this index is a weight worth analysing.
WEIGHT_INPUTS = {"Conv": (1,), "ConvTranspose": (1,), "Gemm": (1,), "MatMul": (0, 1)}


@dataclass(frozen=True)
class ActivationTensor:
    """A quantization point, the node that produces it (None for a graph input) and the ONNX nodes
    of its layer (the toolkit's fused layer, in graph order; empty for a graph input)."""

    name: str
    node: str | None
    op_type: str | None
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class WeightTensor:
    """A constant float weight and the axis of its output channels (for per-channel scales)."""

    name: str
    node: str
    op_type: str
    channel_axis: int


@dataclass(frozen=True)
class LoadedModel:
    """A model, the folder it was read from (None for a model built in memory) and its file.

    External weights stay on disk: onnxruntime reads them from the folder and the weight analysis
    maps them, so a model of several GB is neither copied into this process nor over protobuf's 2 GB.
    """

    proto: ModelProto
    folder: Path | None = None
    source: Path | None = None

    def payload(self) -> bytes:
        """The model as onnxruntime takes it: the file's own bytes when there is a file (reading
        100 MB of weights costs a fifth of serializing them again), else the serialized proto."""
        return self.source.read_bytes() if self.source is not None else serialize(self.proto)


def load_model(model: str | Path | ModelProto | LoadedModel) -> LoadedModel:
    """Load a model (leaving external data on disk) and check it is something onnx can read."""
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, ModelProto):
        if has_external_data(model):
            raise QuantError(
                "the model keeps its weights in external data files: pass the model's path so that they can be found"
            )
        return LoadedModel(model)
    path = Path(model)
    if not path.is_file():
        raise QuantError(f"model file not found: {path}")
    try:
        proto, folder = read_model(path)
    except WorkbenchError as exc:
        raise QuantError(str(exc)) from exc
    return LoadedModel(proto, folder, path)


def input_specs(model: ModelProto) -> list[InputSpec]:
    """Graph inputs that must be fed (initializers listed as inputs are left out); QuantError for one that
    no calibration data can feed: not a tensor, of no known rank or type, or empty (a dim of 0)."""
    specs = runtime_input_specs(model)
    for spec in specs:
        if not spec.tensor:
            raise QuantError(f"input {spec.name!r} is not a tensor; only tensor inputs can be calibrated")
        if spec.shape is None:
            raise QuantError(f"input {spec.name!r} declares no shape; fix its shape in the graph editor first")
        if 0 in spec.shape:
            raise QuantError(f"input {spec.name!r} has a dim of size 0: it holds no values to calibrate on")
    return specs


#: Initializers up to this many elements keep their values for shape inference (shapes, axes,
#: pads are small); larger ones (weights) only lend their type and shape.
_TYPING_VALUES = 1024


def _typing_model(model: ModelProto) -> ModelProto:
    """The model without the values of its weights: shape inference serializes its input, and
    copying 100 MB of weights for it cost as much as the statistics pass of a small model."""
    light = ModelProto()
    light.ir_version = max(model.ir_version, 4)
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    graph, source = light.graph, model.graph
    graph.node.extend(source.node)
    graph.input.extend(source.input)
    graph.output.extend(source.output)
    graph.value_info.extend(source.value_info)
    declared = {v.name for v in source.input}
    for init in source.initializer:
        if math.prod(init.dims) <= _TYPING_VALUES:
            graph.initializer.append(init)
        elif init.name not in declared:
            graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    return light


def infer_types(model: ModelProto) -> dict[str, int]:
    """Element type of every typed tensor of the main graph (after shape inference)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(_typing_model(model), strict_mode=False)
    except Exception:  # custom domains or >2 GB: fall back to what the model declares
        inferred = model
    types: dict[str, int] = {}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        if value.type.HasField("tensor_type"):
            types[value.name] = value.type.tensor_type.elem_type
    for init in model.graph.initializer:
        types[init.name] = init.data_type
    return types


def constant_tensors(model: ModelProto) -> set[str]:
    """Tensors whose value does not depend on any graph input (weights and what is computed from them)."""
    constants = {t.name for t in model.graph.initializer}
    constants.add("")
    fed = {v.name for v in model.graph.input} - {t.name for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial"}:
            continue
        if not has_subgraphs(node) and all(i in constants and i not in fed for i in node.input):
            constants.update(node.output)
    return constants - {""}


def _small_values(model: ModelProto) -> dict[str, np.ndarray]:
    """Values of scalar-sized initializers and Constant nodes (the fusion patterns' 3s and 6s)."""
    values = {
        t.name: numpy_helper.to_array(t)
        for t in model.graph.initializer
        if math.prod(t.dims) <= 16 and t.data_location != TensorProto.EXTERNAL
    }
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR and math.prod(attr.t.dims) <= 16:
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def quantization_points(model: ModelProto, types: dict[str, int], fuse_layers: bool = False) -> list[ActivationTensor]:
    """Float32 activation tensors the toolkit quantizes, in graph order: its layers' outputs with
    ``fuse_layers`` (Acuity, RKNN), else every tensor but a fused Relu/Clip's input (onnxruntime)."""
    constants = constant_tensors(model)
    outputs = {o.name for o in model.graph.output}
    nodes = list(model.graph.node)
    names = node_names(nodes)
    floats = {
        name
        for node in nodes
        for name in node.output
        if name and name not in constants and types.get(name) == TensorProto.FLOAT
    }
    points = [
        ActivationTensor(spec.name, None, None)
        for spec in model.graph.input
        if spec.name not in constants and types.get(spec.name) == TensorProto.FLOAT
    ]
    if fuse_layers:
        layers = toolkit_layers(nodes, floats, constants, _small_values(model), outputs)
        return points + [
            ActivationTensor(layer.output, layer.nodes[-1], layer.op_type, layer.nodes) for layer in layers
        ]
    graph = GraphIndex(model.graph)
    seen = {p.name for p in points}
    for index, node in enumerate(nodes):
        for name in node.output:
            if name not in floats or name in seen:
                continue
            users = graph.users(name)
            if len(users) == 1 and users[0].op_type in FUSED_ACTIVATIONS and name not in outputs:
                continue  # the activation's output is the point
            layer: tuple[str, ...] = (names[index],)
            source = node.input[0] if node.op_type in FUSED_ACTIVATIONS and node.input else ""
            producer = graph.producer.get(source)
            if producer is not None and len(graph.users(source)) == 1 and source not in outputs:
                layer = (names[graph.position(producer)], names[index])
            points.append(ActivationTensor(name, names[index], node.op_type, layer))
            seen.add(name)
    return points


def constant_values(model: ModelProto, folder: Path | None = None) -> dict[str, np.ndarray]:
    """Values of initializers (external ones memory-mapped from ``folder``) and of Constant nodes."""
    values = {t.name: map_tensor(t, folder) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def weight_tensors(model: ModelProto, values: dict[str, np.ndarray]) -> list[WeightTensor]:
    """Float32 constant weights of Conv/ConvTranspose/Gemm/MatMul with their channel axis."""
    weights: dict[str, WeightTensor] = {}
    for index, node in enumerate(model.graph.node):
        for position in WEIGHT_INPUTS.get(node.op_type, ()):
            if position >= len(node.input):
                continue
            name = node.input[position]
            value = values.get(name)
            if value is None or value.dtype != np.float32 or value.ndim < 1 or name in weights:
                continue
            if node.op_type == "ConvTranspose":
                axis = 1
            elif node.op_type == "Gemm":
                axis = 0 if any(a.name == "transB" and a.i for a in node.attribute) else 1
            elif node.op_type == "MatMul":
                axis = value.ndim - 1 if position == 1 else max(value.ndim - 2, 0)
            else:
                axis = 0
            weights[name] = WeightTensor(name, node.name or f"{node.op_type}_{index}", node.op_type, axis)
    return list(weights.values())


def weight_layers(weights: list[WeightTensor], points: list[ActivationTensor]) -> dict[str, set[str]]:
    """For each weight, the quantization points of the layers its nodes belong to: a toolkit gives a
    layer's weights the precision of its output (int16 weights in an int16 layer)."""
    outputs_of: dict[str, set[str]] = {}
    for point in points:
        for node in point.nodes:
            outputs_of.setdefault(node, set()).add(point.name)
    return {w.name: set(outputs_of.get(w.node, ())) for w in weights}


def opset_version(model: ModelProto) -> int:
    """Version of the default ONNX domain."""
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            return int(opset.version)
    return 1
