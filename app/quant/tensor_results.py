"""Each quantization point on its own: its ranges by every algorithm and the predicted SQNR of each
configuration in the toolkit's arithmetic, computed from the statistics pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.quant.errors import QuantError
from app.quant.progress import CancelCheck, ProgressCallback, check_cancel, report
from app.quant.quantizers import histogram_sqnr, sample_sqnr
from app.quant.ranges import ALGORITHMS, Range, all_ranges
from app.quant.stats import TensorStatistics
from app.quant.toolkits import TIERS, Toolkit
from app.runtime.session import in_lanes

if TYPE_CHECKING:
    from app.quant.options import QuantOptions


@dataclass
class TensorResult:
    """Per-tensor outcome: ranges of every algorithm and predicted (and spot-checked) SQNR."""

    stats: TensorStatistics
    ranges: dict[str, Range]
    sqnr_db: dict[str, float | None]
    sampled_sqnr_db: dict[str, float | None]


def tensor_results(
    stats: dict[str, TensorStatistics],
    options: QuantOptions,
    profile: Toolkit,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
) -> dict[str, TensorResult]:
    """Every tensor's ranges and errors, side by side (the range searches free the GIL)."""
    tensors: dict[str, TensorResult] = {}
    report(progress, 0, len(stats), "ranges")

    def result(st: TensorStatistics) -> TensorResult:
        check_cancel(cancel)
        return _tensor_result(st, options, profile)

    for name, tensor in zip(stats, in_lanes(result, stats.values()), strict=True):
        tensors[name] = tensor
        report(progress, len(tensors), len(stats), "ranges")
    return tensors


def _tensor_result(stats: TensorStatistics, options: QuantOptions, profile: Toolkit) -> TensorResult:
    """Ranges of every algorithm and the predicted SQNR of each (tier, algorithm) in the toolkit's arithmetic."""
    hist = stats.histogram
    if hist.count == 0:
        raise QuantError(f"tensor {stats.tensor.name!r} held no finite values")
    low = profile.tier("uint8").activation
    ranges = all_ranges(
        hist, options.percentile, options.kl_bins or profile.kl_bins, options.kl_levels, options.kl_method, low
    )
    keys = [(tier, profile.tier(tier).activation, a) for tier in TIERS for a in ALGORITHMS]
    predicted = histogram_sqnr(hist, [(q, *ranges[a]) for _, q, a in keys])
    sqnr = {f"{tier}/{a}": v for (tier, _, a), v in zip(keys, predicted, strict=True)}
    sampled = {f"{tier}/{a}": sample_sqnr(stats.sample, q, *ranges[a]) for tier, q, a in keys}
    return TensorResult(stats, ranges, sqnr, sampled)
