"""What the routes call: the work behind each resource, in no HTTP terms (errors are app/server/errors.py's
domain errors). Storage (sessions, jobs, uploads) stays in app/server; the engines in app/graph and app/quant."""
