"""Running a model in onnxruntime on given or random inputs, and comparing two models' outputs.

Inputs come as a .npz; every array header is checked (shape, dtype, size against what the file
really holds) before anything is allocated, so a header claiming 10^12 elements is refused.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ..graph import ModelDocument
from ..graph.errors import first_line
from ..graph.guard import element_count
from ..graph.summary import value_info_json
from .errors import Invalid, TooLarge

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16,
              "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16,
              "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_}


def npy_header(fileobj: Any) -> tuple[tuple[int, ...], np.dtype, bool]:
    """Shape, dtype and Fortran order of a .npy stream, read without reading the data."""
    try:
        version = np.lib.format.read_magic(fileobj)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fileobj)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fileobj)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, OSError, EOFError, SyntaxError) as err:
        raise Invalid("bad_npy", f"not a valid .npy array: {err}") from None
    if dtype.hasobject:
        raise Invalid("bad_npy", "object arrays (pickles) are not accepted")
    return tuple(int(d) for d in shape), dtype, bool(fortran)


def check_npy_size(shape: tuple[int, ...], dtype: np.dtype, available: int, limit: int, what: str) -> None:
    """Refuse absurd or lying headers before numpy allocates anything."""
    count = element_count(shape)
    if count > limit:
        raise TooLarge("too_large", f"{what}: shape {list(shape)} has {count:,} elements; the limit is "
                       f"{limit:,}", {"shape": list(shape)})
    if count * dtype.itemsize > available:
        raise Invalid("bad_npy", f"{what}: the header says {list(shape)} {dtype} ({count * dtype.itemsize:,} "
                       f"bytes) but the file holds {available:,} bytes of data", {"shape": list(shape)})


def read_npz(path: Path, max_elements: int, max_bytes: int) -> dict[str, np.ndarray]:
    """The arrays of an uploaded .npz, each header checked before its data is read."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise Invalid("bad_npz", "inputs must be a .npz file (numpy.savez), one array per model input") \
            from None
    arrays: dict[str, np.ndarray] = {}
    with archive:
        members = archive.infolist()
        if sum(m.file_size for m in members) > max_bytes:
            raise TooLarge("too_large", f"the inputs unpack to more than {max_bytes:,} bytes")
        for member in members:
            name = member.filename[:-4] if member.filename.endswith(".npy") else member.filename
            try:
                with archive.open(member) as f:
                    shape, dtype, fortran = npy_header(f)
                    check_npy_size(shape, dtype, member.file_size - f.tell(), max_elements, f"input '{name}'")
                    data = f.read()
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
                raise Invalid("bad_npz", f"input '{name}' could not be read: {err}") from None
            array = np.frombuffer(data, dtype=dtype, count=element_count(shape))
            arrays[name] = array.reshape(shape, order="F" if fortran else "C")
    return arrays


def input_specs(doc: ModelDocument) -> list[dict[str, Any]]:
    """The model inputs as the summary lists them, without computing the rest of the summary."""
    initializers = doc.main.initializers
    return [value_info_json(v) for v in doc.model.graph.input if v.name not in initializers]


def random_inputs(doc: ModelDocument, dims: dict[str, int], seed: int, max_elements: int) -> dict[str, np.ndarray]:
    """Inputs matching the declared shapes; named dims from `dims`, other unknown dims 1.

    Integers are 0 or 1, which is valid for ids, masks and indices of any model.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for spec in input_specs(doc):
        if spec["shape"] is None:
            raise Invalid("unknown_input_shape", f"input '{spec['name']}' has no declared shape; upload inputs "
                           "as .npz instead", {"input": spec["name"]})
        shape = [d if isinstance(d, int) and d >= 0 else dims.get(d, 1) if isinstance(d, str) else 1
                 for d in spec["shape"]]  # exporters write -1 for unknown dims too
        count = element_count(shape)  # Python ints: an int64 product of huge dims wraps round to small
        if count > max_elements:
            raise TooLarge("too_large", f"input '{spec['name']}' of shape {shape} has {count:,} elements; the "
                           f"limit is {max_elements:,}", {"input": spec["name"], "shape": shape})
        try:
            dtype = np.dtype(spec["dtype"])
        except TypeError:
            raise Invalid("unsupported_input", f"input '{spec['name']}' is {spec['dtype']}; random values of "
                           "that type cannot be made, upload inputs as .npz", {"input": spec["name"]}) from None
        if dtype.kind == "f":
            out[spec["name"]] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            out[spec["name"]] = rng.integers(0, 2, size=shape).astype(dtype)
        elif dtype.kind == "b":
            out[spec["name"]] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise Invalid("unsupported_input", f"input '{spec['name']}' is {dtype}; upload inputs as .npz",
                           {"input": spec["name"]})
    return out


def run_model(model: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs by name; errors of the model or of the inputs come back as 422 with onnxruntime's words."""
    try:
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise Invalid("model_not_runnable", f"onnxruntime cannot load the model: {first_line(err)[:500]}") from None
    expected = {i.name: i for i in session.get_inputs()}
    unknown = sorted(set(inputs) - set(expected))
    missing = sorted(set(expected) - set(inputs))
    if unknown or missing:
        raise Invalid("bad_inputs", "inputs do not match the model: " +
                       "; ".join(p for p in (f"unknown {unknown}" if unknown else "",
                                             f"missing {missing}" if missing else "") if p),
                       {"unknown": unknown, "missing": missing})
    feed = {}
    for name, value in inputs.items():
        want = _ORT_TYPES.get(expected[name].type)
        if want is not None and value.dtype != want:
            raise Invalid("wrong_dtype", f"input '{name}' must be {np.dtype(want)}, not {value.dtype}",
                           {"input": name, "expected": str(np.dtype(want))})
        feed[name] = np.ascontiguousarray(value)
    names = [o.name for o in session.get_outputs()]
    try:
        values = session.run(names, feed)
    except Exception as err:
        raise Invalid("run_failed", f"onnxruntime failed on these inputs: {first_line(err)[:500]}") from None
    return {n: _plain(v) for n, v in zip(names, values)}


def _plain(value: Any) -> np.ndarray:
    """A tensor output as it is; a sequence or map (e.g. ZipMap's) as its JSON text in a 0-d string array,
    so that .npz files of outputs never need pickles."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value
    if isinstance(value, np.ndarray) and all(isinstance(v, (str, bytes)) for v in value.flat):
        return value.astype(str)
    text = json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o), sort_keys=True)
    return np.array(text)


def compare(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per output: max abs difference and cosine similarity (numbers), or plain equality (strings and
    JSON text of sequences and maps); outputs only one side has are listed."""
    outputs = []
    for name in before:
        if name not in after:
            continue
        a, b = before[name], after[name]
        entry: dict[str, Any] = {"name": name, "shape_before": list(a.shape), "shape_after": list(b.shape),
                                 "dtype_before": str(a.dtype), "dtype_after": str(b.dtype)}
        if a.shape != b.shape or a.dtype.kind not in "fiub" or b.dtype.kind not in "fiub":
            entry.update(max_abs_diff=None, cosine=None, equal=a.shape == b.shape and bool(np.array_equal(a, b)))
        else:
            x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
            diff = np.abs(x - y)
            entry["max_abs_diff"] = _num(diff.max()) if diff.size else 0.0
            norm = float(np.linalg.norm(x) * np.linalg.norm(y))
            entry["cosine"] = _num(float(x @ y) / norm) if norm > 0 else (1.0 if not x.any() and not y.any() else 0.0)
            entry["equal"] = bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
        outputs.append(entry)
    return {"outputs": outputs, "only_before": [n for n in before if n not in after],
            "only_after": [n for n in after if n not in before],
            "all_equal": all(o["equal"] for o in outputs) and not (set(before) ^ set(after))}


def _num(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
