"""The browser's view of a document: built on the graph engine (app.graph), drawn by the page.

graph_view: the graph as JSON (nodes, tensors, initializer summaries); graph_delta: what changed in it
between two versions, and how to apply that. The drawing: boxes (what a box shows and how big it is,
BOX_METRICS), placement (the Sugiyama placement, new boxes beside placed ones), memory (where boxes
were last drawn), drawing (one graph drawn), layout (a drawing that follows the graph's versions).
This package reads the engine, never the server; the engine knows nothing of it.
"""
