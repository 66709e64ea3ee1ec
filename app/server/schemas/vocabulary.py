"""The page's vocabulary: the constants and names the server decides and the browser reads once."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BoxMetrics(BaseModel):
    """Pixel metrics of a box of the layout (app/view/boxes.py): the canvas draws with the same ones."""

    title_h: float = Field(description="height of a box's title bar")
    row_h: float = Field(description="height of one attribute or weight row under the title")
    rows_pad: float = Field(description="space added under the title when a box has rows, half above them")
    pad_x: float = Field(description="horizontal padding of the title and rows inside a box")


class QuantVocabulary(BaseModel):
    """Names of the quantization analysis (app/quant), as its settings and reports spell them."""

    algorithms: list[str] = Field(description="clip-range algorithms, in the order the page shows them")
    configurations: list[str] = Field(description="whole-model configurations measured end to end (dtype/algorithm)")
    hybrid: str = Field(description="the label of the recommended uint8/int16 mix")
    toolkits: list[str] = Field(description="toolkits whose arithmetic the analysis simulates")
    default_toolkit: str


class Vocabulary(BaseModel):
    """Everything the page needs to know that the server decides."""

    box: BoxMetrics
    quant: QuantVocabulary
    dtypes: list[str] = Field(description="element types offered for a new model input, the default first")
