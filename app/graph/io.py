"""Loading and saving models, with external data, without holding extra copies of the weights.

Loading leaves external weights on disk (checked to lie inside the model's folder). Saving streams
the model out one node and one tensor at a time, so a model of several GB is never serialized as
one buffer; external weights are copied file to file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet
from onnx import AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, helper, numpy_helper
from onnx.external_data_helper import load_external_data_for_tensor

from .document import ModelDocument
from .errors import ModelLoadError, WorkbenchError, first_line
from .guard import check_model
from .index import subgraphs
from .skeleton import copy_fields, tensor_nbytes

PROTOBUF_LIMIT = 2**31 - 1
EXTERNAL_THRESHOLD = 1024  # tensors at least this big go to the data file when saving externally
ALIGNMENT = 4096
_DATA_FIELDS = (
    "raw_data",
    "float_data",
    "int32_data",
    "string_data",
    "int64_data",
    "double_data",
    "uint64_data",
    "external_data",
    "data_location",
)


def load_model(path: str | os.PathLike[str], guard: bool = True) -> ModelDocument:
    """Parse a model; weights in external files stay there, after their locations are checked."""
    return ModelDocument(*read_model(path, guard))


def read_model(path: str | os.PathLike[str], guard: bool = True) -> tuple[ModelProto, Path]:
    """The model and its folder, without its external weights (their locations checked); the tensors
    held outside initializers (attributes, bodies) are read in, because only initializers can be
    handed to a runtime or an editor by reference. `guard` (see guard.py) refuses values nothing
    downstream can handle; only files the service wrote itself, or checked before, skip it."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"no such model file: {path}", code="file_not_found")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as err:
        raise ModelLoadError(
            f"{path.name} is not an ONNX model (it could not be parsed as one: "
            f"{first_line(err) if str(err).strip() else 'truncated or corrupt'})"
        ) from None
    if not model.HasField("graph") or (not model.opset_import and not model.graph.node):
        raise ModelLoadError(f"{path.name} is not an ONNX model (no graph or opset in it)")
    base_dir = path.resolve().parent
    for tensor in model.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            check_external(tensor, base_dir)
    for tensor in _other_tensors(model.graph):
        if tensor.data_location == TensorProto.EXTERNAL:
            check_external(tensor, base_dir)
            load_external_data_for_tensor(tensor, str(base_dir))
            tensor.data_location = TensorProto.DEFAULT
            del tensor.external_data[:]
    if guard:
        check_model(model, base_dir)
    return model, base_dir


def _other_tensors(graph: GraphProto, top: bool = True) -> Iterator[TensorProto]:
    """Tensors held outside the main graph's initializer list (attributes, bodies)."""
    if not top:
        yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.TENSOR:
                yield attr.t
            elif attr.type == AttributeProto.TENSORS:
                yield from attr.tensors
        for _, _, body in subgraphs(node):
            yield from _other_tensors(body, top=False)


def external_info(tensor: TensorProto) -> dict[str, str]:
    return {entry.key: entry.value for entry in tensor.external_data}


def check_external(tensor: TensorProto, base_dir: Path) -> Path:
    """The file holding a tensor's data, refused unless it lies inside the model's folder."""
    info = external_info(tensor)
    location = info.get("location", "")
    where = f"tensor '{tensor.name}': external data location '{location}'"
    if not location or os.path.isabs(location) or ".." in Path(location).parts or "\\" in location:
        raise ModelLoadError(
            f"{where} must be a plain relative path inside the model's folder", code="unsafe_external_data"
        )
    file = base_dir / location
    if file.is_symlink() or not file.resolve().is_relative_to(base_dir.resolve()):
        raise ModelLoadError(f"{where} points outside the model's folder", code="unsafe_external_data")
    if not file.is_file():
        raise ModelLoadError(f"{where} is missing: upload it together with the model", code="missing_external_data")
    size = file.stat().st_size
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else size - offset
    except ValueError:
        raise ModelLoadError(f"{where} has a malformed offset or length", code="bad_external_data") from None
    if offset < 0 or length < 0 or offset + length > size:
        raise ModelLoadError(
            f"{where} asks for bytes {offset}..{offset + length} of a file of {size} bytes", code="bad_external_data"
        )
    return file


def read_tensor(tensor: TensorProto, base_dir: Path | None) -> np.ndarray:
    """A tensor's value, reading external data from the model's folder when needed."""
    if tensor.data_location == TensorProto.EXTERNAL:
        if base_dir is None:
            raise WorkbenchError(f"tensor '{tensor.name}' keeps its data in a file, but the model has no folder")
        check_external(tensor, base_dir)
        return numpy_helper.to_array(tensor, str(base_dir))
    return numpy_helper.to_array(tensor)


#: Element types whose external bytes are a plain little-endian array numpy can map.
_MAPPABLE_TYPES = {
    TensorProto.FLOAT,
    TensorProto.DOUBLE,
    TensorProto.FLOAT16,
    TensorProto.BOOL,
    TensorProto.INT8,
    TensorProto.INT16,
    TensorProto.INT32,
    TensorProto.INT64,
    TensorProto.UINT8,
    TensorProto.UINT16,
    TensorProto.UINT32,
    TensorProto.UINT64,
}


def map_tensor(tensor: TensorProto, base_dir: Path | None) -> np.ndarray:
    """A tensor's value; external data of a fixed-size type is memory-mapped read-only, so a weight
    of a several-GB model is paged in as it is read instead of copied into memory."""
    if tensor.data_location != TensorProto.EXTERNAL or tensor.data_type not in _MAPPABLE_TYPES:
        return read_tensor(tensor, base_dir)
    if base_dir is None:
        raise WorkbenchError(f"tensor '{tensor.name}' keeps its data in a file, but the model has no folder")
    file = check_external(tensor, base_dir)
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).newbyteorder("<")
    shape = tuple(tensor.dims)
    info = external_info(tensor)
    offset = int(info.get("offset", "0"))
    if int(info.get("length", file.stat().st_size - offset)) < math.prod(shape) * dtype.itemsize:
        raise ModelLoadError(
            f"tensor '{tensor.name}': its external data is shorter than its shape {list(shape)} needs",
            code="bad_external_data",
        )
    if math.prod(shape) == 0:
        return np.zeros(shape, dtype)
    return np.memmap(file, dtype=dtype, mode="r", offset=offset, shape=shape)


def weights_size(model: ModelProto) -> int:
    return sum(tensor_nbytes(t) for t in model.graph.initializer)


def has_external_data(model: ModelProto) -> bool:
    return any(t.data_location == TensorProto.EXTERNAL for t in model.graph.initializer)


def save_model(
    doc: ModelDocument, path: str | os.PathLike[str], external: bool | None = None, reuse_external: bool = False
) -> list[Path]:
    """Write the model (and its data file when external); returns the files written.

    `external=None` keeps weights external when they were, and makes them external when the
    model would pass protobuf's 2 GB limit. The data file is `<model file name>.data` beside it.
    `external=False` writes every weight into the model file, streaming external ones in.
    `reuse_external=True` (internal snapshots) leaves external references as they are, for a
    folder where the same data files are reachable under the same names; no weight is copied.
    """
    path = Path(path)
    model = doc.model
    total = model.ByteSize() + weights_size(model)
    if external is None:
        external = has_external_data(model) or total >= PROTOBUF_LIMIT
    if not external and total >= PROTOBUF_LIMIT:
        raise WorkbenchError("the model is over 2 GB: save it with external data", code="too_large")
    data_path = path.with_name(path.name + ".data")
    if external and _reads_from(doc, data_path):
        raise WorkbenchError(
            f"saving would overwrite {data_path.name}, which this model reads its weights from; "
            "choose another output name",
            code="would_overwrite",
        )
    tmp_model = path.with_name(path.name + ".partial")
    tmp_data = data_path.with_name(data_path.name + ".partial")
    try:
        with open(tmp_model, "wb") as out:
            if external:
                with open(tmp_data, "wb") as data:
                    pieces = [
                        _Piece(
                            t
                            if reuse_external and t.data_location == TensorProto.EXTERNAL
                            else _to_external(t, doc.base_dir, data, data_path.name)
                        )
                        for t in model.graph.initializer
                    ]
                    data.flush()
                    os.fsync(data.fileno())
            else:
                pieces = [
                    _Piece(t) if reuse_external else _inline_piece(t, doc.base_dir) for t in model.graph.initializer
                ]
            _stream_model(model, out, pieces)
            out.flush()
            os.fsync(out.fileno())
        if external:
            os.replace(tmp_data, data_path)
        os.replace(tmp_model, path)
    finally:
        for leftover in (tmp_model, tmp_data):
            leftover.unlink(missing_ok=True)
    return [path, data_path] if external else [path]


@dataclass
class _Piece:
    """One node or initializer as written: its message, plus raw bytes streamed from a file after it."""

    message: TensorProto | NodeProto
    raw: tuple[Path, int, int] | None = None  # (file, offset, length)

    def size(self) -> int:
        size = self.message.ByteSize()
        if self.raw:
            size += len(_tag(_RAW_DATA)) + len(_varint(self.raw[2])) + self.raw[2]
        return size

    def write(self, out: BinaryIO) -> None:
        out.write(self.message.SerializeToString())
        if self.raw:
            file, offset, length = self.raw
            out.write(_tag(_RAW_DATA))
            out.write(_varint(length))
            with open(file, "rb") as src:
                src.seek(offset)
                _copy_range(src, out, length)


def _inline_piece(tensor: TensorProto, base_dir: Path | None) -> _Piece:
    """An external tensor written inline: its bytes go into the model file, straight from disk."""
    if tensor.data_location != TensorProto.EXTERNAL:
        return _Piece(tensor)
    assert base_dir is not None
    source = check_external(tensor, base_dir)
    info = external_info(tensor)
    offset = int(info.get("offset", "0"))
    length = int(info["length"]) if "length" in info else source.stat().st_size - offset
    stub = TensorProto()
    copy_fields(tensor, stub, skip=_DATA_FIELDS)
    return _Piece(stub, (source, offset, length))


def _reads_from(doc: ModelDocument, data_path: Path) -> bool:
    if doc.base_dir is None or not data_path.exists():
        return False
    target = data_path.resolve()
    for tensor in doc.model.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            if (doc.base_dir / external_info(tensor).get("location", "")).resolve() == target:
                return True
    return False


def _to_external(tensor: TensorProto, base_dir: Path | None, data: BinaryIO, data_name: str) -> TensorProto:
    """The tensor as written to the model file: its bytes appended to `data`, or kept inline if small."""
    source_external = tensor.data_location == TensorProto.EXTERNAL
    if not source_external and (tensor.data_type == TensorProto.STRING or tensor.ByteSize() < EXTERNAL_THRESHOLD):
        return tensor
    pad = (-data.tell()) % ALIGNMENT
    data.write(b"\0" * pad)
    offset = data.tell()
    if source_external:
        assert base_dir is not None
        source = check_external(tensor, base_dir)
        info = external_info(tensor)
        start = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else source.stat().st_size - start
        with open(source, "rb") as src:
            src.seek(start)
            _copy_range(src, data, length)
    else:
        payload = tensor.raw_data if tensor.HasField("raw_data") else numpy_helper.to_array(tensor).tobytes()
        length = len(payload)
        data.write(payload)
    stub = TensorProto()
    copy_fields(tensor, stub, skip=_DATA_FIELDS)
    stub.data_location = TensorProto.EXTERNAL
    for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(length))):
        entry = stub.external_data.add()
        entry.key, entry.value = key, value
    return stub


def _copy_range(src: BinaryIO, dst: BinaryIO, length: int) -> None:
    remaining = length
    while remaining > 0:
        chunk = src.read(min(remaining, 16 * 1024 * 1024))
        if not chunk:
            raise WorkbenchError("external data file ended early", code="bad_external_data")
        dst.write(chunk)
        remaining -= len(chunk)


_GRAPH = ModelProto.DESCRIPTOR.fields_by_name["graph"].number
_NODE = GraphProto.DESCRIPTOR.fields_by_name["node"].number
_INITIALIZER = GraphProto.DESCRIPTOR.fields_by_name["initializer"].number
_RAW_DATA = TensorProto.DESCRIPTOR.fields_by_name["raw_data"].number


def _tag(field_number: int) -> bytes:
    return _varint((field_number << 3) | 2)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _stream_model(model: ModelProto, out: BinaryIO, initializers: list[_Piece]) -> None:
    """Write a ModelProto piece by piece: equal to model.SerializeToString() once parsed, never whole.

    Fields this onnx version does not know (from newer writers) are kept: they are re-encoded
    from the shells' unknown-field sets."""
    graph = model.graph
    shell = ModelProto()
    copy_fields(model, shell, skip=("graph",))
    graph_shell = GraphProto()
    copy_fields(graph, graph_shell, skip=("node", "initializer"))
    pieces = [(_NODE, _Piece(n)) for n in graph.node] + [(_INITIALIZER, p) for p in initializers]
    sizes = [piece.size() for _, piece in pieces]
    graph_head = graph_shell.SerializeToString() + _unknown_bytes(graph)
    graph_size = len(graph_head) + sum(
        len(_tag(f)) + len(_varint(s)) + s for (f, _), s in zip(pieces, sizes, strict=True)
    )
    out.write(shell.SerializeToString() + _unknown_bytes(model))
    out.write(_tag(_GRAPH))
    out.write(_varint(graph_size))
    out.write(graph_head)
    for (number, piece), size in zip(pieces, sizes, strict=True):
        out.write(_tag(number))
        out.write(_varint(size))
        piece.write(out)


def _unknown_bytes(message: Message) -> bytes:
    """The wire encoding of a message's unknown fields (its own level only)."""
    encoded = bytearray()
    unknown = UnknownFieldSet(message)
    for item in (unknown[k] for k in range(len(unknown))):  # indexed: the set has no typed __iter__
        wire_type = item.wire_type
        encoded += _varint((item.field_number << 3) | wire_type)
        if wire_type == 0:
            encoded += _varint(item.data)
        elif wire_type == 1:
            encoded += item.data.to_bytes(8, "little") if isinstance(item.data, int) else item.data
        elif wire_type == 2:
            encoded += _varint(len(item.data)) + item.data
        elif wire_type == 5:
            encoded += item.data.to_bytes(4, "little") if isinstance(item.data, int) else item.data
        else:
            raise WorkbenchError(f"cannot keep an unknown field of wire type {wire_type}", code="unsupported")
    return bytes(encoded)
