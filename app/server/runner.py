"""The server's runs of a whole model: random inputs within the service's limits, outputs as .npz-ready arrays.

Sessions, input checks and onnxruntime's errors are app.runtime's; its errors reach the client through the
one error handler (app.server.errors).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..graph import ModelDocument
from ..graph.guard import element_count
from ..runtime.inputs import input_specs, random_inputs
from ..runtime.session import checked_feeds, open_session, run
from .errors import Invalid, TooLarge


def random_model_inputs(doc: ModelDocument, dims: dict[str, int], seed: int, max_elements: int
                        ) -> dict[str, np.ndarray]:
    """Inputs matching the declared shapes; named dims from `dims`, other unknown dims 1 (values: see
    ``app.runtime.inputs.random_value``)."""
    specs = input_specs(doc.model)
    shapes = {}
    for spec in specs:
        if spec.shape is None:
            raise Invalid("unknown_input_shape", f"input '{spec.name}' has no declared shape; upload inputs "
                          "as .npz instead", {"input": spec.name})
        shape = [d if isinstance(d, int) else dims.get(d, 1) if isinstance(d, str) else 1 for d in spec.shape]
        count = element_count(shape)  # Python ints: an int64 product of huge dims wraps round to small
        if count > max_elements:
            raise TooLarge("too_large", f"input '{spec.name}' of shape {shape} has {count:,} elements; the "
                           f"limit is {max_elements:,}", {"input": spec.name, "shape": shape})
        shapes[spec.name] = shape
    return random_inputs(np.random.default_rng(seed), specs, shapes)


def run_model(model: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs by name; errors of the model or of the inputs come back as 422 with onnxruntime's words."""
    session = open_session(model)
    names = [o.name for o in session.get_outputs()]
    values = run(session, names, checked_feeds(session, inputs))
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
