"""A model's inputs as declared, and random values for them.

A dim is an int when the graph gives a ``dim_value`` of 0 or more (ONNX allows 0: the tensor is empty, and
onnx's checker and onnxruntime accept it), a name for a ``dim_param``, and None when it is unknown (no
value, or a negative one: exporters write -1 for "unknown"); ``app.graph.folding.shape_text`` is that rule,
the one the graph engine's shapes and edit checks already follow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from onnx import ModelProto, ValueInfoProto, helper

from app.graph.folding import shape_text
from app.graph.values import dtype_name
from app.runtime.errors import BadInputs


@dataclass(frozen=True)
class InputSpec:
    """A graph input as declared: dims are ints, names of symbolic dims, or None (unknown).

    ``shape`` None: not even the rank is known (a tensor without a shape, or not a tensor at all).
    ``dtype`` object: not a tensor, or an element type numpy has no dtype for; ``type_name`` names it.
    """

    name: str
    shape: tuple[int | str | None, ...] | None
    dtype: np.dtype
    type_name: str
    tensor: bool = True


def input_specs(model: ModelProto) -> list[InputSpec]:
    """The graph inputs that must be fed (initializers listed as inputs are left out), in graph order."""
    initializers = {t.name for t in model.graph.initializer}
    return [_spec(v) for v in model.graph.input if v.name not in initializers]


def _spec(value: ValueInfoProto) -> InputSpec:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return InputSpec(value.name, None, np.dtype(object), kind or "unknown", tensor=False)
    elem_type = value.type.tensor_type.elem_type
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        dtype = np.dtype(object)
    shape = shape_text(value.type)
    return InputSpec(value.name, None if shape is None else tuple(shape), dtype, dtype_name(elem_type))


def random_value(rng: np.random.Generator, shape: Sequence[int], dtype: np.dtype) -> np.ndarray | None:
    """Seeded values of one input; None for a type random values cannot be made of.

    Floats are standard normal; integers and bools are 0 or 1, which is valid for ids, masks, token
    types and indices of any model (a value of 2 or more would be out of range for BERT's token types or
    an index into a dim of 2)."""
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind in "iub":
        return rng.integers(0, 2, size=shape).astype(dtype)
    return None


def random_inputs(
    rng: np.random.Generator, specs: Sequence[InputSpec], shapes: Mapping[str, Sequence[int]]
) -> dict[str, np.ndarray]:
    """One value per input, drawn in the specs' order (so one seed gives the same values everywhere);
    BadInputs ``unsupported_input`` for a type random values cannot be made of."""
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        value = random_value(rng, shapes[spec.name], spec.dtype)
        if value is None:
            raise BadInputs(
                "unsupported_input",
                f"input '{spec.name}' is {spec.type_name}; random values of "
                "that type cannot be made, upload inputs as .npz",
                {"input": spec.name},
            )
        out[spec.name] = value
    return out
