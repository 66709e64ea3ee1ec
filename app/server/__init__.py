"""The web service: a thin FastAPI layer over the graph engine, with durable private sessions."""
