"""What the data routes answer besides files: the comparison of the original and the current model."""

from __future__ import annotations

from pydantic import BaseModel


class OutputComparison(BaseModel):
    name: str
    shape_before: list[int]
    shape_after: list[int]
    dtype_before: str
    dtype_after: str
    max_abs_diff: float | None
    cosine: float | None
    equal: bool


class ArraySpec(BaseModel):
    dtype: str
    shape: list[int]


class CompareReport(BaseModel):
    outputs: list[OutputComparison]
    only_before: list[str]
    only_after: list[str]
    all_equal: bool
    inputs: dict[str, ArraySpec]
