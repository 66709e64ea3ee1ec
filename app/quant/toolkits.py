"""Toolkit profiles: what Acuity, RKNN-Toolkit2 or onnxruntime do to a model when they quantize it.

A profile is data: the precisions the toolkit offers (the grid of a layer's output and of its
weights), which of them is its default ("uint8" tier: the 8-bit precision) and which its int16
("int16" tier: in Acuity and RKNN a layer in int16 has int16 weights AND activations), the
names of its range algorithms mapped onto ours, and whether it fuses layers (see ``layers``).
The tier names "uint8"/"int16" are the analysis' configuration labels; each profile says what
they mean in its own terms. Sources: ../shared/notes/npu-toolkits.md (TIM-VX ovxlib, Khadas'
Acuity demo files, RKNN-Toolkit2's API reference).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.quant.errors import QuantError
from app.quant.quantizers import DFP8, DFP16, INT8, INT8_ASYMMETRIC, INT16, INT16_ASYMMETRIC, UINT8, Quantizer

#: The analysis' precision tiers: the toolkit's default 8-bit precision and its 16-bit one.
TIERS = ("uint8", "int16")


@dataclass(frozen=True)
class Precision:
    """One precision of a toolkit, by its own name: the grid of a layer's output and of its weights."""

    #: the toolkit's name for a layer in this precision (Acuity ``dynamic_fixed_point-i16``, RKNN ``w8a8``)
    name: str
    #: the quantization scheme and integer type as the toolkit's files write them (Acuity: ``dtype``
    #: asymmetric_affine, ``qtype`` u8; RKNN: ``qtype`` asymmetric_quantized, ``dtype`` int8)
    scheme: str
    itype: str
    activation: Quantizer
    weight: Quantizer
    per_channel: bool

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "scheme": self.scheme,
            "type": self.itype,
            "activation": self.activation.name,
            "weights": f"{self.weight.name} {'per_channel' if self.per_channel else 'per_tensor'}",
        }


@dataclass(frozen=True)
class Toolkit:
    """A toolkit's quantization behaviour (see the module docstring)."""

    name: str
    precisions: dict[str, Precision]
    #: tier ("uint8", "int16") -> name of the precision in ``precisions``
    tiers: dict[str, str]
    #: the toolkit's range algorithm names -> ours (minmax, kl, percentile, mse) and a note when not exact
    algorithms: dict[str, tuple[str, str]]
    default_algorithm: str
    kl_bins: int
    #: fuse Conv+BN+activation etc. into one layer and pass quantization through data movement
    fuses_layers: bool
    #: onnxruntime's optimization level of the float run the statistics come from. onnxruntime's own
    #: calibrator runs the float model unoptimised, and level "basic" gives its numbers bit for bit; the NPU
    #: toolkits run the float model on their own engines, so the faster level "all" (NCHWc convolutions,
    #: 20-35 % less time with every point fetched) differs from them no more than "basic" does.
    statistics_level: str = "all"

    def tier(self, tier: str) -> Precision:
        """The precision of a tier ("uint8": the 8-bit default, "int16": the 16-bit precision)."""
        if tier not in self.tiers:
            raise QuantError(f"unknown precision {tier!r}; choose from {list(self.tiers)}")
        return self.precisions[self.tiers[tier]]

    def tier_of(self, quantizer: Quantizer, weights: bool) -> str:
        """The tier whose activations (or weights) use ``quantizer``; the first when both do."""
        for tier in TIERS:
            if (self.tier(tier).weight if weights else self.tier(tier).activation) == quantizer:
                return tier
        raise QuantError(
            f"{self.name} has no precision with {quantizer.name} {'weights' if weights else 'activations'}"
        )

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "precisions": {tier: self.tier(tier).to_json() for tier in TIERS},
            "algorithms": {
                k: {"ours": ours, **({"note": note} if note else {})} for k, (ours, note) in self.algorithms.items()
            },
            "default_algorithm": self.default_algorithm,
            "kl_bins": self.kl_bins,
            "fuses_layers": self.fuses_layers,
        }


_ACUITY = Toolkit(
    name="acuity",
    precisions={
        p.name: p
        for p in (
            Precision("asymmetric_affine-u8", "asymmetric_affine", "u8", UINT8, UINT8, False),
            Precision("dynamic_fixed_point-i8", "dynamic_fixed_point", "i8", DFP8, DFP8, False),
            Precision("dynamic_fixed_point-i16", "dynamic_fixed_point", "i16", DFP16, DFP16, False),
            # activations: symmetric int8 per tensor (inferred: the published files show weights only)
            Precision("perchannel_symmetric_affine-i8", "perchannel_symmetric_affine", "i8", INT8, INT8, True),
        )
    },
    tiers={"uint8": "asymmetric_affine-u8", "int16": "dynamic_fixed_point-i16"},
    algorithms={
        "normal": ("minmax", ""),
        "kl_divergence": ("kl", ""),
        "moving_average": (
            "minmax",
            "not simulated: a moving average of per-batch extremes (weight "
            "0.01) needs the batches in order; the Min-Max range bounds it",
        ),
    },
    default_algorithm="normal",
    kl_bins=2**11,  # --divergence-first-quantize-bits 11
    fuses_layers=True,
)

_RKNN = Toolkit(
    name="rknn",
    precisions={
        p.name: p
        for p in (
            Precision("w8a8", "asymmetric_quantized", "int8", INT8_ASYMMETRIC, INT8, True),
            # weights: symmetric per channel as in w8a8 (inferred; RKNN documents only "16-bit asymmetric")
            Precision("w16a16i", "asymmetric_quantized", "int16", INT16_ASYMMETRIC, INT16, True),
        )
    },
    tiers={"uint8": "w8a8", "int16": "w16a16i"},
    algorithms={"normal": ("minmax", ""), "mmse": ("mse", ""), "kl_divergence": ("kl", "")},
    default_algorithm="normal",
    kl_bins=2048,
    fuses_layers=True,
)

_ONNXRUNTIME = Toolkit(
    name="onnxruntime",
    precisions={
        p.name: p
        for p in (
            Precision("uint8", "asymmetric", "uint8", UINT8, UINT8, False),
            Precision("int16", "symmetric", "int16", INT16, UINT8, False),
        )
    },
    tiers={"uint8": "uint8", "int16": "int16"},
    algorithms={"minmax": ("minmax", ""), "entropy": ("kl", ""), "percentile": ("percentile", ""), "mse": ("mse", "")},
    default_algorithm="minmax",
    kl_bins=2048,
    fuses_layers=False,
    statistics_level="basic",
)

TOOLKITS: dict[str, Toolkit] = {t.name: t for t in (_ACUITY, _RKNN, _ONNXRUNTIME)}
DEFAULT_TOOLKIT = "acuity"


def toolkit(name: str, per_channel_weights: bool = False, int16_weights: bool = False) -> Toolkit:
    """The profile of a toolkit; onnxruntime's weights follow the two options (per-channel scales,
    int16 weights in int16 layers), the NPU toolkits' are fixed by their precisions."""
    if name not in TOOLKITS:
        raise QuantError(f"unknown toolkit {name!r}; choose from {list(TOOLKITS)}")
    profile = TOOLKITS[name]
    if name != "onnxruntime":
        return profile
    low, high = profile.tier("uint8"), profile.tier("int16")
    precisions = {
        low.name: replace(low, per_channel=per_channel_weights),
        high.name: replace(high, weight=INT16 if int16_weights else UINT8, per_channel=per_channel_weights),
    }
    return replace(profile, precisions=precisions)
