"""What a calibration source is: a re-iterable source of input batches, and the static input shapes it feeds.

The sources themselves are in calibration.py (arrays, random) and images.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from app.quant.errors import QuantError
from app.runtime.inputs import InputSpec

Batch = dict[str, np.ndarray]


def declared_dims(spec: InputSpec) -> tuple[int | str | None, ...]:
    """The declared dims (app.quant.model.input_specs gives only inputs of known rank)."""
    assert spec.shape is not None
    return spec.shape


def describe_input(spec: InputSpec) -> str:
    """An input as errors name it: name, dtype and dims (? for a dynamic one)."""
    dims = "x".join("?" if d is None else str(d) for d in declared_dims(spec))
    return f"{spec.name} ({spec.dtype}, {dims})"


def _dynamic_dims(spec: InputSpec) -> list[str]:
    return [
        f"dim {i} ({d!r})" if d is not None else f"dim {i} (unknown)"
        for i, d in enumerate(declared_dims(spec))
        if not isinstance(d, int)
    ]


def static_shapes(
    specs: Sequence[InputSpec], overrides: Mapping[str, Sequence[int]] | None = None
) -> dict[str, tuple[int, ...]]:
    """Concrete input shapes when no data can tell the dynamic dims; errors name them."""
    overrides = overrides or {}
    shapes, problems = {}, []
    for spec in specs:
        if spec.name in overrides:
            shape = tuple(int(d) for d in overrides[spec.name])
            if len(shape) != len(declared_dims(spec)) or any(
                isinstance(d, int) and d != s for d, s in zip(declared_dims(spec), shape, strict=True)
            ):
                raise QuantError(f"shape {shape} given for input {describe_input(spec)} does not fit its declared dims")
            shapes[spec.name] = shape
            continue
        dynamic = _dynamic_dims(spec)
        if dynamic:
            problems.append(f"input {spec.name!r}: " + ", ".join(dynamic))
        else:
            shapes[spec.name] = tuple(int(d) for d in declared_dims(spec))  # type: ignore[arg-type]
    if problems:
        raise QuantError(
            "the model has dynamic dimensions that the calibration data cannot tell: "
            + "; ".join(problems)
            + ". Make them static first (e.g. fix the input shape in the "
            "graph editor) or give the shape, e.g. --shape x=1x3x640x640"
        )
    return shapes


class CalibrationData:
    """A re-iterable source of input batches, each a dict input name -> array."""

    specs: list[InputSpec]
    shapes: dict[str, tuple[int, ...]]
    num_samples: int
    batch_size: int
    synthetic: bool = False
    description: str = ""

    @property
    def num_batches(self) -> int:
        return self.num_samples // self.batch_size

    def batches(self) -> Iterator[Batch]:
        """Batches in order, one pass over the data."""
        raise NotImplementedError
