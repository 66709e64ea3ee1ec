"""The model guard: what a model holds is checked once, when it comes in from outside.

A model can parse as protobuf yet hold values nothing downstream can serialise or compute with:
names that are not UTF-8 (protobuf hands them over as bytes), tensors whose dims do not match the
data they hold, shapes whose element count no integer type can hold, element types no library
knows. Each of these used to pass the upload and break a later route; the guard walks every
message of the model (subgraphs, functions and training info included, through the protobuf
descriptors rather than a list of known places) and refuses the first problem with a message and
a `field` path that say where it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from onnx import AttributeProto, ModelProto, SparseTensorProto, TensorProto, TensorShapeProto, TypeProto

from .errors import ModelLoadError

#: More elements than any tensor can have: a byte count of so many elements no longer fits an int64.
MAX_ELEMENTS = 1 << 62
#: numpy's most dimensions (NPY_MAXDIMS): a tensor or an input of more is read or made by nothing.
MAX_RANK = 64
_KNOWN_TYPES = frozenset(TensorProto.DataType.values()) - {TensorProto.UNDEFINED}
_ATTRIBUTE_TYPES = frozenset(AttributeProto.AttributeType.values())
#: Bits per element of the sub-byte types, packed in raw data (and, but for 6-bit, in int32_data).
_PACKED_BITS: dict[int, int] = {
    TensorProto.INT4: 4,
    TensorProto.UINT4: 4,
    TensorProto.FLOAT4E2M1: 4,
    TensorProto.INT2: 2,
    TensorProto.UINT2: 2,
    TensorProto.FLOAT6E2M3: 6,
    TensorProto.FLOAT6E3M2: 6,
}
_ITEM_BYTES: dict[int, int] = {
    TensorProto.DOUBLE: 8,
    TensorProto.INT64: 8,
    TensorProto.UINT64: 8,
    TensorProto.COMPLEX128: 16,
    TensorProto.COMPLEX64: 8,
    TensorProto.FLOAT: 4,
    TensorProto.INT32: 4,
    TensorProto.UINT32: 4,
    TensorProto.FLOAT16: 2,
    TensorProto.BFLOAT16: 2,
    TensorProto.INT16: 2,
    TensorProto.UINT16: 2,
}
_TYPED_FIELD: dict[int, str] = {
    TensorProto.FLOAT: "float_data",
    TensorProto.COMPLEX64: "float_data",
    TensorProto.INT64: "int64_data",
    TensorProto.DOUBLE: "double_data",
    TensorProto.COMPLEX128: "double_data",
    TensorProto.UINT32: "uint64_data",
    TensorProto.UINT64: "uint64_data",
    TensorProto.STRING: "string_data",
}
#: How a message found in these fields is called in messages ("graph 'body'", not "g 'body'").
_KINDS = {"g": "graph", "graphs": "graph", "t": "tensor", "tensors": "tensor", "functions": "function"}
_STRING, _MESSAGE, _BYTES = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_BYTES


def element_count(dims: Iterable[int]) -> int:
    """The product of dims in Python integers: no int64 wrap-around, however large they are."""
    return math.prod(int(d) for d in dims)


class _Refused(Exception):
    """A problem found at one message. The walk builds no paths while all is well: as this passes
    up through the enclosing messages, each adds its step and the first named one its name."""

    def __init__(self, problem: str, field: str = ""):
        super().__init__(problem)
        self.problem = problem
        self.steps = [field] if field else []
        self.at_field = bool(field)  # the last step names a field of the message, not a message
        self.owner: str | None = None

    def passing(self, message: Any, field: str, index: int | None) -> None:
        """Record the step into ``field`` of ``message`` (any message; the first one with a name names the place)."""
        self.steps.append(field if index is None else f"{field}[{index}]")
        if self.owner is None and "name" in message.DESCRIPTOR.fields_by_name:
            name = message.name
            if isinstance(name, str) and name:
                self.owner = f"{_KINDS.get(field, field.replace('_', ' '))} '{name}'"


def check_model(model: ModelProto, base_dir: Path | None) -> None:
    """Refuse (ModelLoadError, code `unsupported_model`, details `field`) the first value the service
    could not handle. External data must already have passed `io.check_external`."""
    try:
        _walk(model, base_dir)
    except _Refused as refused:
        steps = refused.steps[::-1]
        where = ".".join(steps[:-1] if refused.at_field else steps)
        label = f"{refused.owner or 'the model'} ({where})" if where else refused.owner or "the model"
        raise ModelLoadError(
            f"{label} {refused.problem}", code="unsupported_model", details={"field": ".".join(steps)}
        ) from None


def _walk(message: Message, base_dir: Path | None) -> None:
    descriptor = message.DESCRIPTOR
    check = _CHECKS.get(descriptor.full_name)
    if check is not None:
        check(message, base_dir)
    for field, value in _set_fields(message, descriptor):
        if field.type == _STRING:  # upb hands out the bytes of a string that is not UTF-8
            if field.is_repeated:
                for i, text in enumerate(value):
                    if type(text) is not str:
                        _not_utf8(f"{field.name}[{i}]", text)
            elif type(value) is not str:
                _not_utf8(field.name, value)
        elif field.type == _MESSAGE:
            index: int | None
            for index, item in enumerate(value) if field.is_repeated else ((None, value),):
                try:
                    _walk(item, base_dir)
                except _Refused as refused:
                    refused.passing(item, field.name, index)
                    raise


_text_fields: dict[str, tuple[FieldDescriptor, ...] | None] = {}


def _set_fields(message: Message, descriptor: Any) -> Sequence[tuple[FieldDescriptor, Any]]:
    """The fields set in a message. ListFields would copy the bytes fields too (a tensor's raw data):
    for types that have any, only their string and message fields are read."""
    name = descriptor.full_name
    if name not in _text_fields:
        has_bytes = any(f.type == _BYTES for f in descriptor.fields)
        _text_fields[name] = tuple(f for f in descriptor.fields if f.type in (_STRING, _MESSAGE)) if has_bytes else None
    fields = _text_fields[name]
    if fields is None:
        return message.ListFields()
    return [
        (f, getattr(message, f.name)) for f in fields if f.is_repeated or f.type == _STRING or message.HasField(f.name)
    ]


def _not_utf8(step: str, text: bytes) -> None:
    raise _Refused(
        f"has {step} = {bytes(text[:60])!r}, which is not valid UTF-8; fix it in the tool that wrote the model", step
    )


def _check_dims(dims: list[int]) -> int:
    """The element count of a tensor's dims, refusing negative dims and impossible ranks and counts."""
    if len(dims) > MAX_RANK:
        raise _Refused(f"has {len(dims)} dims; at most {MAX_RANK} can be read", "dims")
    if any(d < 0 for d in dims):
        raise _Refused(f"declares dims {dims}: a dim is negative", "dims")
    count = element_count(dims)
    if count > MAX_ELEMENTS:
        raise _Refused(f"declares dims {dims}: {count:,} elements, over the 2^62 any tensor can have", "dims")
    return count


def _check_tensor(tensor: TensorProto, base_dir: Path | None) -> None:
    data_type = tensor.data_type
    if data_type not in _KNOWN_TYPES:
        raise _Refused(f"has element type {data_type}, which ONNX does not define", "data_type")
    dims = list(tensor.dims)
    count = _check_dims(dims)
    if tensor.HasField("segment"):
        raise _Refused("is a segment of a tensor split in parts, which nothing here reads", "segment")
    if data_type == TensorProto.STRING:
        if tensor.data_location == TensorProto.EXTERNAL or tensor.HasField("raw_data"):
            raise _Refused("is a string tensor with raw or external data; strings go in string_data")
        _check_held(dims, count, len(tensor.string_data), "strings")
        for i, text in enumerate(tensor.string_data):  # bytes in protobuf, text to onnx and numpy
            try:
                text.decode("utf-8")
            except UnicodeDecodeError:
                raise _Refused(
                    f"holds string {i} = {text[:60]!r}, which is not valid UTF-8", f"string_data[{i}]"
                ) from None
        return
    bits = _PACKED_BITS.get(data_type, 8 * _ITEM_BYTES.get(data_type, 1))
    if tensor.data_location == TensorProto.EXTERNAL or tensor.HasField("raw_data"):
        _check_held(dims, -(-count * bits // 8), _stored_bytes(tensor, base_dir), "bytes")
        return
    field = _TYPED_FIELD.get(data_type, "int32_data")
    per_entry = 8 // bits if data_type in _PACKED_BITS and bits != 6 else 1
    entries = 2 * count if data_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128) else -(-count // per_entry)
    _check_held(dims, entries, len(getattr(tensor, field)), f"values in {field}")


def _stored_bytes(tensor: TensorProto, base_dir: Path | None) -> int:
    if tensor.data_location != TensorProto.EXTERNAL:
        return len(tensor.raw_data)
    from .io import check_external, external_info  # io calls the guard when it loads a model

    if base_dir is None:
        raise _Refused("keeps its data in a file, but the model has no folder")
    file = check_external(tensor, base_dir)  # the location and the range are safe from here on
    info = external_info(tensor)
    return int(info["length"]) if "length" in info else file.stat().st_size - int(info.get("offset", "0"))


def _check_held(dims: list[int], needed: int, held: int, unit: str) -> None:
    if needed != held:
        raise _Refused(f"declares dims {dims}, which need {needed:,} {unit}, but holds {held:,}")


def _check_sparse(sparse: SparseTensorProto, base_dir: Path | None) -> None:
    _check_dims(list(sparse.dims))


def _check_tensor_type(tensor_type: TypeProto.Tensor, base_dir: Path | None) -> None:
    if tensor_type.elem_type not in _KNOWN_TYPES and tensor_type.elem_type != TensorProto.UNDEFINED:
        raise _Refused(f"has element type {tensor_type.elem_type}, which ONNX does not define", "elem_type")


def _check_shape(shape: TensorShapeProto, base_dir: Path | None) -> None:
    if len(shape.dim) > MAX_RANK:
        raise _Refused(f"declares a shape of {len(shape.dim)} dims; at most {MAX_RANK} can be run")
    known = []
    for i, dim in enumerate(shape.dim):
        if dim.WhichOneof("value") == "dim_value":
            if dim.dim_value < -1:  # exporters write -1 for an unknown dim; nothing writes less
                raise _Refused(f"has dim {i} = {dim.dim_value}; a dim is a size, or -1 for unknown", f"dim[{i}]")
            known.append(dim.dim_value)
    count = element_count(d for d in known if d > 0)
    if count > MAX_ELEMENTS:
        raise _Refused(f"declares a shape of {count:,} elements ({known}), over the 2^62 any tensor can have")


def _check_attribute(attribute: AttributeProto, base_dir: Path | None) -> None:
    if attribute.type not in _ATTRIBUTE_TYPES:
        raise _Refused(f"has attribute type {attribute.type}, which ONNX does not define", "type")


_CHECKS: dict[str, Callable[[Any, Path | None], None]] = {
    TensorProto.DESCRIPTOR.full_name: _check_tensor,
    SparseTensorProto.DESCRIPTOR.full_name: _check_sparse,
    TypeProto.Tensor.DESCRIPTOR.full_name: _check_tensor_type,
    TypeProto.SparseTensor.DESCRIPTOR.full_name: _check_tensor_type,
    TensorShapeProto.DESCRIPTOR.full_name: _check_shape,
    AttributeProto.DESCRIPTOR.full_name: _check_attribute,
}
