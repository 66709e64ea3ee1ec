"""The words and numbers the page shares with the server, served as data so the browser holds no copy.

The page reads this once at start-up (app/static/js/core/vocabulary.js): the box metrics the layout
sized each box with (the canvas draws titles and rows at the same offsets), the quantization
algorithm, configuration and toolkit names the analysis knows, and the dtypes the editor offers for a
new model input.
"""

from __future__ import annotations

from fastapi import APIRouter

from ...quant import CONFIGS, HYBRID
from ...quant.ranges import ALGORITHMS
from ...quant.toolkits import DEFAULT_TOOLKIT, TOOLKITS
from ...view.boxes import BOX_METRICS
from ..schemas.vocabulary import BoxMetrics, QuantVocabulary, Vocabulary

router = APIRouter(prefix="/api", tags=["service"])

#: The element types the "Add model input" dialog offers, most used first; each is a name the add_input
#: edit accepts (app.graph.values.parse_dtype), which tests/api/test_vocabulary.py checks.
INPUT_DTYPES = (
    "float32",
    "float16",
    "bfloat16",
    "float64",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "bool",
    "string",
)


@router.get("/vocabulary", response_model=Vocabulary, summary="The page's constants and names, read once at start-up")
def get_vocabulary() -> Vocabulary:
    return Vocabulary(
        box=BoxMetrics(**{name: BOX_METRICS[name] for name in BoxMetrics.model_fields}),
        quant=QuantVocabulary(
            algorithms=list(ALGORITHMS),
            configurations=list(CONFIGS),
            hybrid=HYBRID,
            toolkits=list(TOOLKITS),
            default_toolkit=DEFAULT_TOOLKIT,
        ),
        dtypes=list(INPUT_DTYPES),
    )
