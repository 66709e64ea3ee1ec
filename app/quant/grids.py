"""The grid chosen for a tensor: its quantizer and range (activations) or axis (weights), and its JSON."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.quant.quantizers import Quantizer
from app.quant.weights import channel_params


@dataclass(frozen=True)
class ActivationQuant:
    """The grid chosen for one activation tensor."""

    quantizer: Quantizer
    lo: float
    hi: float
    algorithm: str

    @property
    def params(self) -> tuple[np.float32, int]:
        return self.quantizer.params(self.lo, self.hi)

    def to_json(self) -> dict:
        """Scale and zero point, or for dynamic fixed point the fraction length fl (scale 2^-fl)."""
        scale, zero_point = self.params
        grid = (
            {"fl": self.quantizer.fraction_length(self.lo, self.hi)}
            if self.quantizer.power_of_two
            else {"zero_point": int(zero_point)}
        )
        return {
            "quantizer": self.quantizer.name,
            "scale": float(scale),
            **grid,
            "range": [float(self.lo), float(self.hi)],
            "algorithm": self.algorithm,
        }


@dataclass(frozen=True)
class WeightQuant:
    """The grid chosen for one weight: per tensor (axis None) or per channel."""

    quantizer: Quantizer
    axis: int | None

    def to_json(self, w: np.ndarray) -> dict:
        """Scales and zero points (or fl), one per channel or one for the tensor."""
        scale, zero_point = channel_params(self.quantizer, w, self.axis)
        if self.quantizer.power_of_two:
            name, values = "fl", np.rint(-np.log2(scale.astype(np.float64))).astype(np.int64)
        else:
            name, values = "zero_point", zero_point
        return {
            "quantizer": self.quantizer.name,
            "axis": self.axis,
            "scale": scale.tolist() if self.axis is not None else float(scale[0]),
            name: values.tolist() if self.axis is not None else int(values[0]),
            "range": [float(w.min()), float(w.max())],
            "algorithm": "minmax",
        }
