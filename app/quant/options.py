"""The analysis' settings, checked once when they are made."""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.quant.errors import QuantError
from app.quant.histogram import DEFAULT_CAPACITY
from app.quant.ranges import KlMethod
from app.quant.toolkits import DEFAULT_TOOLKIT, TOOLKITS
from app.quant.verdict import Thresholds


@dataclass(frozen=True)
class QuantOptions:
    """Knobs of the analysis; ``target`` is the toolkit whose arithmetic and layers are simulated."""

    target: str = DEFAULT_TOOLKIT
    percentile: float = 99.99
    #: histogram bins of the KL search; None: the toolkit's default (Acuity 2^11)
    kl_bins: int | None = None
    kl_levels: int = 128
    kl_method: KlMethod = "tensorrt"
    histogram_capacity: int = DEFAULT_CAPACITY
    sample_size: int = 4096
    #: onnxruntime target: per-channel weight scales, and int16 layers with int16 weights too (W16A16,
    #: as Acuity's and RKNN's int16 layers always have); default A16W8. The NPU toolkits fix both.
    per_channel_weights: bool = False
    int16_weights: bool = False
    end_to_end: bool = True
    target_margin_db: float = 3.0
    target_sqnr_db: float | None = None
    hybrid_base: str | None = None
    #: samples of the precision curve and of the weights-only / activations-only runs
    search_samples: int = 4
    #: samples of the error map (accumulated and local error) and of the sensitivity ranking: a run per
    #: point each, so few; one 640x640 image holds millions of values per tensor
    sensitivity_samples: int = 1
    seed: int = 0
    #: absolute thresholds of the verdict on each configuration's measured outputs
    thresholds: Thresholds = Thresholds()

    def __post_init__(self) -> None:
        if self.target not in TOOLKITS:
            raise QuantError(f"unknown target toolkit {self.target!r}; choose from {list(TOOLKITS)}")
        if not 50 < self.percentile <= 100:
            raise QuantError("percentile must be in (50, 100]")
        if self.kl_levels < 2 or (self.kl_bins is not None and self.kl_bins < 2 * self.kl_levels):
            raise QuantError("KL search needs at least 2 levels and twice as many bins as levels")
        if self.hybrid_base not in (None, "uint8/minmax", "uint8/kl"):
            raise QuantError("hybrid base must be uint8/minmax or uint8/kl")
        if self.search_samples < 1 or self.sensitivity_samples < 1:
            raise QuantError("search_samples and sensitivity_samples must be at least 1")
        if self.seed < 0:
            raise QuantError(f"the seed must be 0 or more (numpy's generators take no negative seed), not {self.seed}")
        if not all(math.isfinite(v) for v in (self.target_margin_db, self.target_sqnr_db or 0.0)):
            raise QuantError("the SQNR targets must be finite numbers")
