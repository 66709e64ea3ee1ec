"""The browser's view of a document, built on the graph engine and drawn by the page.

graph_view: the graph as JSON (nodes, tensors, initializer summaries); graph_delta: what changed in it
between two versions, and how to apply that; boxes, placement, layout, layout_update and memory: the
drawing (box content, the Sugiyama placement, and the incremental layout that keeps a local edit's
picture still). It reads the engine (app.graph), never the server; the engine knows nothing of it.
"""
