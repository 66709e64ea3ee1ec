"""The graph as the browser draws it, built straight from the document and gzipped once per version.

Shape: {"version", "graph": {...}} where a graph is
    {"name", "inputs": [...], "outputs": [...], "nodes": [...], "tensors": {...}, "initializers": {...}}.
Each node has id (what edits take), name, op_type, domain, attributes, inputs and outputs (tensor
names); nodes of If/Loop/Scan carry "subgraphs": [{"attribute", "index", "graph"}] with the bodies
nested in the same shape, and a body's nodes carry "ref", the path [owner, attribute, node, ...]
that edits take. The tensors table gives dtype, shape (declared, else from shape inference),
producer, consumers and flags. Initializers are summarised: dtype, shape, bytes, and min/max/mean/
std, exact up to SAMPLE_ELEMENTS (65,536) elements and beyond that from 16 contiguous chunks spread
evenly over the tensor, 65,536 elements in all ("sampled": true), so a view of 500 MB of weights reads
a few MB; raw values of big tensors are never sent.
"""

from __future__ import annotations

import gzip
import math
import os
import threading
import zlib
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from onnx import GraphProto, NodeProto, TensorProto, TypeProto, helper

from ..graph import ModelDocument, WorkbenchError
from ..graph.index import subgraphs
from ..graph.io import check_external, external_info
from ..graph.shapes import inferred_types, shape_text
from ..graph.skeleton import tensor_nbytes
from ..graph.values import attribute_to_json
from ..graph.values import dtype_name as _dtype_name

SAMPLE_ELEMENTS = 1 << 16
SAMPLE_CHUNKS = 16
_STATS_CACHE_SIZE = 20_000
_VIEW_CACHE_SIZE = 4

dtype_name = lru_cache(maxsize=64)(_dtype_name)  # called for every tensor: numpy's dtype names are slow

_stats_cache: OrderedDict[tuple, dict[str, Any] | None] = OrderedDict()
_view_cache: OrderedDict[tuple, bytes] = OrderedDict()
_cache_lock = threading.Lock()


def graph_view_gzip(session_id: str, doc: ModelDocument) -> bytes:
    """The gzipped JSON view, cached per session and version (versions only ever increase)."""
    key = (session_id, doc.version)
    with _cache_lock:
        cached = _view_cache.get(key)
        if cached is not None:
            _view_cache.move_to_end(key)
            return cached
    body = orjson.dumps(graph_view(doc))  # NaN and infinity (JSON has none) become null
    packed = gzip.compress(body, compresslevel=5)
    with _cache_lock:
        _view_cache[key] = packed
        while len(_view_cache) > _VIEW_CACHE_SIZE:
            _view_cache.popitem(last=False)
    return packed


def graph_view(doc: ModelDocument) -> dict[str, Any]:
    fields, inferred = view_header(doc)
    return {"version": doc.version, **fields, "graph": _graph(doc, doc.main, inferred)}


def view_header(doc: ModelDocument) -> tuple[dict[str, Any], dict[str, TypeProto]]:
    """The model-level fields of the view, and the inferred types its tensors take when none is declared."""
    inference_error = None
    try:
        inferred = inferred_types(doc)
    except WorkbenchError as err:
        inferred, inference_error = {}, err.message
    except Exception as err:  # onnx's C++ inference can fail in ways it has no error type for
        inferred, inference_error = {}, f"shape inference failed: {err}"
    model = doc.model
    fields = {
        "ir_version": model.ir_version,
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "producer": " ".join(p for p in (model.producer_name, model.producer_version) if p),
        "shape_inference": {"ok": inference_error is None, "message": inference_error},
    }
    return fields, inferred


def _graph(doc: ModelDocument, scope: Any, inferred: dict[str, TypeProto]) -> dict[str, Any]:
    graph: GraphProto = scope.graph
    declared: dict[str, TypeProto] = {}
    for items in (graph.value_info, graph.input, graph.output):
        for vi in items:
            if vi.type.WhichOneof("value") is not None:
                declared[vi.name] = vi.type
    initializers = {t.name: t for t in graph.initializer}
    inputs = {v.name for v in graph.input}
    outputs = {v.name for v in graph.output}
    nodes = []
    tensors: dict[str, dict[str, Any]] = {}

    def tensor(name: str) -> dict[str, Any]:
        entry = tensors.get(name)
        if entry is None:
            entry = tensors[name] = {"producer": None, "consumers": []}
        return entry

    reads = scope.index.reads
    for pos, node in enumerate(graph.node):
        item = node_item(doc, scope, pos, node)
        nid = item["id"]
        nodes.append(item)
        for name in reads(node):
            tensor(name)["consumers"].append(nid)
        for name in node.output:
            if name:
                tensor(name)["producer"] = nid
    for name in list(inputs) + list(outputs) + list(initializers):
        tensor(name)
    for name, entry in tensors.items():
        describe_tensor(entry, name, declared.get(name) or inferred.get(name), initializers.get(name), inputs, outputs)
    return {
        "name": graph.name,
        "inputs": [v.name for v in graph.input if v.name not in initializers],
        "outputs": [v.name for v in graph.output],
        "nodes": nodes,
        "tensors": tensors,
        "initializers": _initializer_summaries(doc, initializers)
        if not scope.path
        else {name: initializer_summary(t, doc.base_dir) for name, t in initializers.items()},
    }


def node_item(doc: ModelDocument, scope: Any, pos: int, node: NodeProto) -> dict[str, Any]:
    """One node as the view lists it (bodies of If/Loop/Scan nested); `pos` is its place in its graph."""
    attributes = node.attribute
    item: dict[str, Any] = {
        "id": scope.node_id(node),
        "name": node.name,
        "op_type": node.op_type,
        "domain": node.domain,
        "inputs": list(node.input),
        "outputs": list(node.output),
        "attributes": {a.name: attribute_to_json(a) for a in attributes} if attributes else {},
    }
    if scope.path:
        item["ref"] = doc.node_path(scope, node)
    if attributes:
        bodies = [
            {
                "attribute": attr_name,
                "index": gi,
                "graph": _graph(doc, doc.scope(scope.path + ((pos, attr_name, gi),)), {}),
            }
            for attr_name, gi, _ in subgraphs(node)
        ]
        if bodies:
            item["subgraphs"] = bodies
    return item


def describe_tensor(
    entry: dict[str, Any],
    name: str,
    type_proto: TypeProto | None,
    initializer: TensorProto | None,
    inputs: set[str] | dict[str, Any],
    outputs: set[str] | dict[str, Any],
) -> None:
    """Fill in a tensor entry's dtype, shape and flags: the declared or inferred type, else the initializer's."""
    if type_proto is None and initializer is not None:
        entry["dtype"], entry["shape"] = dtype_name(initializer.data_type), list(initializer.dims)
    elif type_proto is not None and type_proto.WhichOneof("value") == "tensor_type":
        entry["dtype"] = dtype_name(type_proto.tensor_type.elem_type)
        entry["shape"] = shape_text(type_proto)
    else:
        entry["dtype"] = type_proto.WhichOneof("value") if type_proto is not None else None
        entry["shape"] = None
    entry["is_initializer"] = initializer is not None
    entry["is_input"] = name in inputs and initializer is None
    entry["is_output"] = name in outputs


def _initializer_summaries(doc: ModelDocument, initializers: dict[str, TensorProto]) -> dict[str, Any]:
    return {name: main_initializer_summary(doc, name, tensor) for name, tensor in initializers.items()}


def main_initializer_summary(doc: ModelDocument, name: str, tensor: TensorProto) -> dict[str, Any]:
    """A main-graph summary kept with the document, recomputed only when an edit changed the initializer."""
    cache: dict[str, tuple[int, dict[str, Any]]] = doc.derived.setdefault("initializer_summaries", {})
    revision = doc.initializer_revision(name)
    entry = cache.get(name)
    if entry is None or entry[0] != revision:
        entry = cache[name] = (revision, initializer_summary(tensor, doc.base_dir))
    return entry[1]


def initializer_summary(tensor: TensorProto, base_dir: Path | None) -> dict[str, Any]:
    external = tensor.data_location == TensorProto.EXTERNAL
    size = _itemsize(tensor.data_type)
    nbytes = math.prod(tensor.dims) * size if size and not external else tensor_nbytes(tensor)
    return {
        "dtype": dtype_name(tensor.data_type),
        "shape": list(tensor.dims),
        "bytes": nbytes,
        "external": external,
        "stats": tensor_stats(tensor, base_dir),
    }


@lru_cache(maxsize=64)
def _itemsize(data_type: int) -> int:
    """Bytes per element of fixed-size types (0 for strings and packed sub-byte types)."""
    if data_type in _PACKED_TYPES or data_type in (TensorProto.STRING, TensorProto.UNDEFINED):
        return 0
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        return 0


def tensor_stats(tensor: TensorProto, base_dir: Path | None) -> dict[str, Any] | None:
    """min/max/mean/std of a numeric tensor (None for strings and packed types), cached by content."""
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
    except (KeyError, TypeError, ValueError):
        return None
    if dtype.kind not in "fiub" or tensor.data_type in _PACKED_TYPES:
        return None
    count = math.prod(tensor.dims)
    if count == 0:
        return None
    try:
        key, values = _source(tensor, base_dir, dtype, count)
    except (WorkbenchError, OSError, ValueError):
        return None
    if key is not None:
        with _cache_lock:
            if key in _stats_cache:
                _stats_cache.move_to_end(key)
                return _stats_cache[key]
    stats = _compute(values(), count)
    if key is not None:
        with _cache_lock:
            _stats_cache[key] = stats
            while len(_stats_cache) > _STATS_CACHE_SIZE:
                _stats_cache.popitem(last=False)
    return stats


_PACKED_TYPES = {
    getattr(TensorProto, n) for n in ("INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2") if hasattr(TensorProto, n)
}


def _source(tensor: TensorProto, base_dir: Path | None, dtype: np.dtype, count: int) -> tuple[tuple | None, Any]:
    """A cache key for the tensor's content and a function giving its values (memory-mapped if external)."""
    shape_key = (tensor.data_type, tuple(tensor.dims))
    if tensor.data_location == TensorProto.EXTERNAL:
        if base_dir is None:
            raise ValueError("no folder")
        file = check_external(tensor, base_dir)
        info = external_info(tensor)
        offset = int(info.get("offset", "0"))
        st = os.stat(file)
        if int(info.get("length", count * dtype.itemsize)) < count * dtype.itemsize:
            raise ValueError("short external data")
        key: tuple[object, ...] = ("ext", st.st_dev, st.st_ino, st.st_mtime_ns, offset, shape_key)
        return key, lambda: np.memmap(file, dtype=dtype.newbyteorder("<"), mode="r", offset=offset, shape=(count,))
    if tensor.HasField("raw_data"):
        raw = tensor.raw_data
        if len(raw) != count * dtype.itemsize:
            raise ValueError("raw_data size does not match the shape")
        key = ("raw", len(raw), zlib.crc32(raw), shape_key)
        return key, lambda: np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
    from onnx import numpy_helper

    return None, lambda: numpy_helper.to_array(tensor).reshape(-1)


def _compute(values: Any, count: int) -> dict[str, Any] | None:
    sampled = count > SAMPLE_ELEMENTS
    if sampled:
        chunk = SAMPLE_ELEMENTS // SAMPLE_CHUNKS
        starts = np.linspace(0, count - chunk, SAMPLE_CHUNKS).astype(np.int64)
        data = np.concatenate([np.asarray(values[s : s + chunk]) for s in starts])
    else:
        data = np.asarray(values)
    data = data.astype(np.float64)
    low, high = data.min(), data.max()
    nonfinite = 0
    if not (np.isfinite(low) and np.isfinite(high)):  # NaN or infinity somewhere: describe the rest
        finite = np.isfinite(data)
        nonfinite = int(data.size - np.count_nonzero(finite))
        data = data[finite]
        if data.size == 0:
            return {"min": None, "max": None, "mean": None, "std": None, "sampled": sampled, "nonfinite": nonfinite}
        low, high = data.min(), data.max()
    mean = data.mean()
    data -= mean
    return {
        "min": float(low),
        "max": float(high),
        "mean": float(mean),
        "std": float(np.sqrt(np.dot(data, data) / data.size)),
        "sampled": sampled,
        "nonfinite": nonfinite,
    }
