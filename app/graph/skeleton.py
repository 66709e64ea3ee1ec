"""A weightless copy of a model, for onnx's checker and shape inference.

Both take the whole model as one serialized buffer; with weights inline that would copy every
weight, and with weights in external files the checker insists on finding the files. The skeleton
keeps every node and small constant (shape tensors matter to data propagation) and turns large or
external initializers into typed graph inputs, which gives checker and inference the same answers.
"""

from __future__ import annotations

import onnx
from google.protobuf.message import Message
from onnx import GraphProto, ModelProto, TensorProto, helper

from .errors import EditError, first_line

SMALL_TENSOR_BYTES = 64 * 1024


def tensor_nbytes(tensor: TensorProto) -> int:
    """Stored size of a tensor's data without reading external files."""
    if tensor.data_location == TensorProto.EXTERNAL:
        for entry in tensor.external_data:
            if entry.key == "length":
                return int(entry.value)
        count = 1
        for d in tensor.dims:
            count *= d
        return (
            count * max(1, helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize)
            if tensor.data_type not in (TensorProto.UNDEFINED, TensorProto.STRING)
            else 0
        )
    return tensor.ByteSize()


def is_small(tensor: TensorProto) -> bool:
    return tensor.data_location != TensorProto.EXTERNAL and tensor.ByteSize() <= SMALL_TENSOR_BYTES


def skeleton(model: ModelProto) -> ModelProto:
    """The model with large and external initializers replaced by graph inputs of the same type."""
    out = ModelProto()
    copy_fields(model, out, skip=("graph",))
    _skeleton_graph(model.graph, out.graph)
    return out


def copy_fields(src: Message, dst: Message, skip: tuple[str, ...]) -> None:
    """Copy every set field of `src` into `dst` except the named ones (shallow in spirit, deep in fact)."""
    for desc, value in src.ListFields():
        if desc.name in skip:
            continue
        target = getattr(dst, desc.name)
        if desc.is_repeated:
            target.extend(value)
        elif desc.message_type is not None:
            target.CopyFrom(value)
        else:
            setattr(dst, desc.name, value)


def _skeleton_graph(src: GraphProto, dst: GraphProto) -> None:
    copy_fields(src, dst, skip=("initializer", "input"))
    dst.input.extend(src.input)
    listed = {v.name for v in src.input}
    for tensor in src.initializer:
        if is_small(tensor):
            dst.initializer.append(tensor)
        elif tensor.name not in listed:
            dst.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))


def check_model_structure(model: ModelProto) -> None:
    """onnx's full checker on the skeleton; raises EditError with the checker's first line."""
    try:
        onnx.checker.check_model(skeleton(model))
    except onnx.checker.ValidationError as err:
        raise EditError(f"the model would be invalid: {first_line(err)}", code="invalid_model") from None


def data_inputs(model: ModelProto) -> set[str]:
    """Graph inputs that carry data. Below IR 4 every initializer is also listed as an input and is
    still a constant; from IR 4 on, an input with an initializer of its name is overridable."""
    names = {v.name for v in model.graph.input}
    if model.ir_version < 4:
        names -= {t.name for t in model.graph.initializer}
    return names
