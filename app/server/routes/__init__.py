"""The routes, one module per resource, each thin: parse the request, call a service or the engine, answer.

`ROUTERS` is the order the app includes them in (which is the order /docs lists them in).
"""

from __future__ import annotations

from . import (
    apply,
    data,
    edits,
    graph,
    histograms,
    jobs,
    layout,
    operators,
    pages,
    quant,
    quant_ui,
    runs,
    sessions,
    vocabulary,
)

ROUTERS = [
    sessions.router,
    graph.router,
    edits.router,
    data.router,
    runs.router,
    apply.router,
    jobs.router,
    quant.router,
    layout.router,
    histograms.router,
    operators.router,
    quant_ui.router,
    vocabulary.router,
    pages.router,
]
