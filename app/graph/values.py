"""Conversions between the JSON of edit scripts and ONNX attributes and tensors.

JSON has no types beyond number, string and list, so the ONNX type of an attribute comes from
the existing attribute or the operator schema, and a tensor's dtype from the tensor it replaces.
Everything a user sends is checked here, with messages that say what was expected.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from .errors import EditError
from .guard import MAX_RANK, element_count

MAX_ELEMENTS = 1 << 31  # refuse absurd sizes before anything is allocated

ATTRIBUTE_TYPE_NAMES: dict[str, int] = {
    "int": AttributeProto.INT,
    "float": AttributeProto.FLOAT,
    "string": AttributeProto.STRING,
    "tensor": AttributeProto.TENSOR,
    "ints": AttributeProto.INTS,
    "floats": AttributeProto.FLOATS,
    "strings": AttributeProto.STRINGS,
    "tensors": AttributeProto.TENSORS,
    "graph": AttributeProto.GRAPH,
    "graphs": AttributeProto.GRAPHS,
}
ATTRIBUTE_TYPE_LABELS = {v: k for k, v in ATTRIBUTE_TYPE_NAMES.items()}


def dtype_name(data_type: int) -> str:
    """'float32', 'int64', ... for a TensorProto data type (ONNX's own name when numpy has none)."""
    try:
        return str(np.dtype(helper.tensor_dtype_to_np_dtype(data_type)))
    except (KeyError, TypeError, ValueError):
        return TensorProto.DataType.Name(data_type).lower()


def parse_dtype(name: Any) -> int:
    """A TensorProto data type from 'float32' / 'int64' / 'FLOAT' / 'bool' ..."""
    if isinstance(name, str):
        upper = name.upper()
        if upper in TensorProto.DataType.keys() and upper != "UNDEFINED":
            return TensorProto.DataType.Value(upper)
        try:
            return helper.np_dtype_to_tensor_dtype(np.dtype(name))
        except (TypeError, KeyError, ValueError):
            pass
    raise EditError(
        f"unknown dtype {name!r}; use a name such as float32, float16, int64, int32, uint8, bool",
        code="bad_dtype",
        details={"dtype": name},
    )


def check_numbers(edit: dict[str, Any]) -> None:
    """Every number in an edit must be one that JSON can say and ONNX can store, because the edit is
    kept and replayed as JSON: NaN and infinities (Python's JSON parser accepts them, and 1e999 is
    infinity) and integers beyond 64 bits are refused, naming the field."""
    for key, value in edit.items():
        found = _bad_number(value, str(key))
        if found is not None:
            where, number = found
            if isinstance(number, float):
                raise EditError(
                    f"{edit.get('op', 'edit')}: field '{where}' is {number}; numbers in edits must be "
                    "finite (send a tensor holding NaN or infinity as npy_base64)",
                    code="bad_number",
                    details={"field": where},
                )
            raise EditError(
                f"{edit.get('op', 'edit')}: field '{where}' is {number}, beyond the 64-bit integers ONNX stores",
                code="bad_number",
                details={"field": where},
            )


def _bad_number(value: Any, where: str) -> tuple[str, float | int] | None:
    """The first non-finite float or over-64-bit integer in a JSON value, and where it is."""
    kind = type(value)
    if kind is float:
        return None if math.isfinite(value) else (where, value)
    if kind is int:
        return None if -(1 << 63) <= value < 1 << 64 else (where, value)
    if kind is list:
        for i, item in enumerate(value):
            if type(item) is not str:
                found = _bad_number(item, f"{where}[{i}]")
                if found is not None:
                    return found
    elif kind is dict:
        for key, item in value.items():
            found = _bad_number(item, f"{where}.{key}")
            if found is not None:
                return found
    return None


def check_shape(shape: Any, what: str) -> list[int | str | None]:
    """A shape from JSON: ints (>= 0), strings for symbolic dims, null or '?' for unknown ones."""
    if not isinstance(shape, list):
        raise EditError(f"{what}: shape must be a list of dims", code="bad_shape")
    if len(shape) > MAX_RANK:
        raise EditError(f"{what}: shape has {len(shape)} dims; at most {MAX_RANK} can be run", code="bad_shape")
    dims: list[int | str | None] = []
    for dim in shape:
        if isinstance(dim, bool) or (not isinstance(dim, (int, str)) and dim is not None):
            raise EditError(f"{what}: dim {dim!r} must be an integer, a name or null", code="bad_shape")
        if isinstance(dim, int) and not 0 <= dim < MAX_ELEMENTS:
            raise EditError(f"{what}: dim {dim} is out of range (0 to {MAX_ELEMENTS - 1})", code="bad_shape")
        dims.append(None if dim in ("?", "") else dim)
    return dims


def array_from_npy_base64(data: Any) -> np.ndarray:
    if not isinstance(data, str):
        raise EditError("npy_base64 must be a base64 string of a .npy file", code="bad_value")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise EditError("npy_base64 is not valid base64", code="bad_value") from None
    return array_from_npy_bytes(raw)


def array_from_npy_bytes(raw: bytes) -> np.ndarray:
    """Read a .npy file safely: no pickles, shape sanity-checked by numpy's header parser first."""
    try:
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as err:  # numpy raises several types for a bad file
        raise EditError(f"not a valid .npy file: {err}", code="bad_value") from None
    if not isinstance(array, np.ndarray):
        raise EditError("expected a single .npy array", code="bad_value")
    return array


def array_from_json(value: Any, dtype: np.dtype) -> np.ndarray:
    """Nested lists (or a scalar) to an array of `dtype`, refusing values that would not survive."""
    try:
        raw = np.asarray(value)
    except ValueError:
        raise EditError("value must be a number or a rectangular nested list of numbers", code="bad_value") from None
    if raw.dtype == object or raw.size > MAX_ELEMENTS:
        raise EditError("value must be a number or a rectangular nested list of numbers", code="bad_value")
    if dtype.kind in "iub" and raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or not np.all(raw == np.round(raw)):
            raise EditError(f"value has fractions but the tensor is {dtype}", code="wrong_dtype")
    if raw.dtype.kind in "US" and dtype.kind not in "US":
        raise EditError(f"value holds strings but the tensor is {dtype}", code="wrong_dtype")
    if dtype.kind in "iu" and raw.size:
        info = np.iinfo(dtype)
        if raw.min() < info.min or raw.max() > info.max:
            raise EditError(f"value is out of range for {dtype}", code="wrong_dtype")
    return raw.astype(dtype)


def tensor_from_json(spec: Any, name: str = "") -> TensorProto:
    """A tensor attribute value: {"dtype", "value"} or {"npy_base64"} (dtype from the array)."""
    if not isinstance(spec, dict):
        raise EditError(
            'a tensor value is an object {"dtype": ..., "value": ...} or {"npy_base64": ...}', code="bad_value"
        )
    if "npy_base64" in spec:
        array = array_from_npy_base64(spec["npy_base64"])
    else:
        data_type = parse_dtype(spec.get("dtype", "float32"))
        array = array_from_json(spec.get("value"), helper.tensor_dtype_to_np_dtype(data_type))
        if "shape" in spec:
            shape = [int(d) for d in check_shape(spec["shape"], "tensor") if isinstance(d, int)]
            if element_count(shape) != array.size:
                raise EditError(
                    f"value has {array.size} elements, shape {shape} needs {element_count(shape):,}", code="bad_shape"
                )
            array = array.reshape(shape)
    return numpy_helper.from_array(array, name)


def attribute_from_json(name: str, value: Any, attr_type: int) -> AttributeProto:
    """Build an attribute of a known ONNX type from its JSON value."""
    label = ATTRIBUTE_TYPE_LABELS.get(attr_type, str(attr_type))
    bad = EditError(
        f"attribute '{name}' is of type {label}; {value!r} is not a valid {label} value",
        code="bad_attribute",
        details={"attribute": name, "type": label},
    )
    if attr_type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
        raise EditError(
            f"attribute '{name}' is a subgraph; edit the nodes inside it instead",
            code="bad_attribute",
            details={"attribute": name},
        )
    if attr_type == AttributeProto.INT:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise bad
        return helper.make_attribute(name, int(value), attr_type=attr_type)
    if attr_type == AttributeProto.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return helper.make_attribute(name, float(value), attr_type=attr_type)
    if attr_type == AttributeProto.STRING:
        if not isinstance(value, str):
            raise bad
        return helper.make_attribute(name, value.encode(), attr_type=attr_type)
    if attr_type == AttributeProto.TENSOR:
        return helper.make_attribute(name, tensor_from_json(value), attr_type=attr_type)
    if not isinstance(value, list):
        raise bad
    if attr_type == AttributeProto.INTS:
        if not all(not isinstance(v, bool) and isinstance(v, (int, float)) and int(v) == v for v in value):
            raise bad
        return helper.make_attribute(name, [int(v) for v in value], attr_type=attr_type)
    if attr_type == AttributeProto.FLOATS:
        if not all(not isinstance(v, bool) and isinstance(v, (int, float)) for v in value):
            raise bad
        return helper.make_attribute(name, [float(v) for v in value], attr_type=attr_type)
    if attr_type == AttributeProto.STRINGS:
        if not all(isinstance(v, str) for v in value):
            raise bad
        return helper.make_attribute(name, [v.encode() for v in value], attr_type=attr_type)
    if attr_type == AttributeProto.TENSORS:
        return helper.make_attribute(name, [tensor_from_json(v) for v in value], attr_type=attr_type)
    raise EditError(f"attribute '{name}' has type {label}, which cannot be edited", code="bad_attribute")


def guess_attribute_type(value: Any) -> int:
    """For custom ops without a schema: the ONNX type a JSON value most plainly means."""
    if isinstance(value, bool):
        return AttributeProto.INT
    if isinstance(value, int):
        return AttributeProto.INT
    if isinstance(value, float):
        return AttributeProto.FLOAT
    if isinstance(value, str):
        return AttributeProto.STRING
    if isinstance(value, dict):
        return AttributeProto.TENSOR
    if isinstance(value, list) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return AttributeProto.INTS
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return AttributeProto.FLOATS
        if all(isinstance(v, str) for v in value):
            return AttributeProto.STRINGS
        if all(isinstance(v, dict) for v in value):
            return AttributeProto.TENSORS
    raise EditError(
        f'cannot tell the attribute type of {value!r}; give "type" (int, float, string, '
        "ints, floats, strings, tensor, tensors)",
        code="bad_attribute",
    )


def attribute_to_json(attr: AttributeProto, max_elements: int = 64) -> Any:
    """The JSON form of an attribute value (tensors summarised when large, subgraphs by name)."""
    kind = attr.type
    if kind == AttributeProto.INT:
        return attr.i
    if kind == AttributeProto.FLOAT:
        return attr.f
    if kind == AttributeProto.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if kind == AttributeProto.INTS:
        return list(attr.ints)
    if kind == AttributeProto.FLOATS:
        return list(attr.floats)
    if kind == AttributeProto.STRINGS:
        return [s.decode("utf-8", errors="replace") for s in attr.strings]
    if kind == AttributeProto.TENSOR:
        return tensor_to_json(attr.t, max_elements)
    if kind == AttributeProto.TENSORS:
        return [tensor_to_json(t, max_elements) for t in attr.tensors]
    if kind == AttributeProto.GRAPH:
        return {"graph": attr.g.name, "nodes": len(attr.g.node)}
    if kind == AttributeProto.GRAPHS:
        return [{"graph": g.name, "nodes": len(g.node)} for g in attr.graphs]
    return None


def tensor_to_json(tensor: TensorProto, max_elements: int = 64) -> dict[str, Any]:
    """dtype and shape, plus the values when there are few of them."""
    out: dict[str, Any] = {"dtype": dtype_name(tensor.data_type), "shape": list(tensor.dims)}
    count = element_count(tensor.dims)
    if count <= max_elements and tensor.data_location != TensorProto.EXTERNAL:
        try:
            out["value"] = numpy_helper.to_array(tensor).tolist()
        except (ValueError, TypeError):
            pass
    return out


def schema_attribute_type(op_type: str, domain: str, version: int | None, name: str) -> int | None:
    """The attribute's type per the onnx schema, or None for custom ops and unknown attributes."""
    try:
        schema = onnx.defs.get_schema(op_type, version or onnx.defs.onnx_opset_version(), domain)
    except onnx.defs.SchemaError:
        return None
    attr = schema.attributes.get(name)
    return attribute_type_number(attr) if attr is not None else None


def attribute_type_number(attr: onnx.defs.OpSchema.Attribute) -> int:
    """A schema attribute's type as AttributeProto numbers it (the same values)."""
    return int(attr.type)  # type: ignore[call-overload]  # onnx's stub omits the pybind enum's __int__
