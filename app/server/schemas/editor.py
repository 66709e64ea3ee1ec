"""What the browser editor's own routes answer: the layout and its deltas, a weight's histogram and its
per-channel ranges, the operators of the model's opsets."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .common import Delta


class Drawing(BaseModel):
    """Boxes in order, and edges and stubs naming boxes by their position in `nodes`."""

    model_config = ConfigDict(extra="allow")

    version: int
    scope: list[str]
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    stubs: list[dict[str, Any]]
    broadcast: list[Any]
    width: float
    height: float
    incremental: bool


class LayoutDelta(Delta):
    """The drawing's boxes and edges that changed (onnx-workbench/layout-delta); with full, the client lays
    out again."""


class WeightHistogram(BaseModel):
    version: int
    counts: list[int]
    edges: list[float]
    sampled: bool = Field(description="made from an even sample of the values")
    summary: dict[str, Any] | None = Field(
        default=None, description="dtype, shape, bytes, statistics; absent when no value is finite"
    )


class Histogram(BaseModel):
    edges: list[float]
    counts: list[int]


class WeightView(BaseModel):
    version: int
    tensor: str
    axis: int
    shape: list[int]
    min: list[float | None] = Field(description="per channel; null for a channel without finite values")
    max: list[float | None]
    histogram: Histogram


class OperatorInput(BaseModel):
    name: str
    optional: bool
    variadic: bool


class OperatorOutput(BaseModel):
    name: str


class OperatorAttribute(BaseModel):
    name: str
    type: str
    required: bool


class Operator(BaseModel):
    op_type: str
    domain: str
    since_version: int
    inputs: list[OperatorInput]
    outputs: list[OperatorOutput]
    min_output: int
    attributes: list[OperatorAttribute]


class Operators(BaseModel):
    opsets: dict[str, int]
    operators: list[Operator]
