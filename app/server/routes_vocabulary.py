"""The words and numbers the page shares with the server, served as data so the browser holds no copy.

The page reads this once at start-up (app/static/js/core/vocabulary.js): the box metrics the layout
sized each box with (the canvas draws titles and rows at the same offsets), the quantization
algorithm, configuration and toolkit names the analysis knows, and the dtypes the editor offers for a
new model input.
"""
from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ..quant import CONFIGS, HYBRID
from ..quant.ranges import ALGORITHMS
from ..quant.toolkits import DEFAULT_TOOLKIT, TOOLKITS
from ..view.boxes import BOX_METRICS

router = APIRouter(prefix="/api", tags=["service"])

#: The element types the "Add model input" dialog offers, most used first; each is a name the add_input
#: edit accepts (app.graph.values.parse_dtype), which tests/api/test_vocabulary.py checks.
INPUT_DTYPES = ("float32", "float16", "bfloat16", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                "int64", "uint64", "bool", "string")


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


@router.get("/vocabulary", response_model=Vocabulary, summary="The page's constants and names, read once at start-up")
def get_vocabulary() -> Vocabulary:
    return Vocabulary(
        box=BoxMetrics(**{name: BOX_METRICS[name] for name in BoxMetrics.model_fields}),
        quant=QuantVocabulary(algorithms=list(ALGORITHMS), configurations=list(CONFIGS), hybrid=HYBRID,
                              toolkits=list(TOOLKITS), default_toolkit=DEFAULT_TOOLKIT),
        dtypes=list(INPUT_DTYPES))
