"""OpenAPI links: which values of an answer the next requests take (the docs page shows them), so that tools
that follow links (schemathesis' stateful tests) chain real requests: an upload to every route of the
session it opened, an edit to an undo at the version it answered, the graph to one of its nodes and
tensors, a quantization job to its results.

One table says what each answer provides; a link is added from that answer to every operation whose
path parameters it can all fill, and which takes something more specific than the session id (or
whose session it has just created), so a new route is linked without being listed here.
"""

from __future__ import annotations

from typing import Any

SESSION = "$request.path.session_id"
VERSION = "$response.body#/version"

# (method, path, status) -> {value: runtime expression}; the values are named by what takes them below
PROVIDES: dict[tuple[str, str, str], dict[str, str]] = {
    ("post", "/api/sessions", "201"): {"session": "$response.body#/id", "version": VERSION},
    ("get", "/api/sessions/{session_id}", "200"): {"session": "$response.body#/id", "version": VERSION},
    ("post", "/api/sessions/{session_id}/edits", "200"): {"session": SESSION, "version": VERSION},
    ("post", "/api/sessions/{session_id}/undo", "200"): {"session": SESSION, "version": VERSION},
    ("post", "/api/sessions/{session_id}/redo", "200"): {"session": SESSION, "version": VERSION},
    ("put", "/api/sessions/{session_id}/tensors/{name}", "200"): {"session": SESSION, "version": VERSION},
    ("get", "/api/sessions/{session_id}/history", "200"): {"session": SESSION, "version": VERSION},
    ("get", "/api/sessions/{session_id}/graph", "200"): {
        "session": SESSION,
        "version": VERSION,
        "node": "$response.body#/graph/nodes/0/id",
        # a tensor the first node reads: an initializer when the graph opens on its weights
        "tensor": "$response.body#/graph/nodes/0/inputs/0",
    },
    ("post", "/api/sessions/{session_id}/quant", "202"): {"session": SESSION, "job": "$response.body#/job_id"},
    ("post", "/api/sessions/{session_id}/quant/{job_id}/measure", "202"): {"job": "$response.body#/job_id"},
}

# parameter name -> the value it takes
TAKES = {
    "session_id": "session",
    "expected_version": "version",
    "since": "version",
    "node_id": "node",
    "name": "tensor",
    "tensor": "tensor",
    "job_id": "job",
}
# the tensor download and upload routes take the name with ".npy" after it
SUFFIXES = {("/api/sessions/{session_id}/tensors/{name}", "name"): ".npy"}


def add_links(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the links to a generated OpenAPI document (in place; returned for convenience)."""
    operations = [
        (method, path, op)
        for path, item in spec.get("paths", {}).items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    ]
    for (method, path, status), provides in PROVIDES.items():
        source = spec["paths"].get(path, {}).get(method)
        if source is None or status not in source.get("responses", {}):
            continue
        creates = "session_id" not in path
        links = {}
        for _, target_path, target in operations:
            parameters = _parameters_for(target_path, target, provides)
            if parameters is None or not (creates or set(parameters) - {"path.session_id"}):
                continue
            links[target["operationId"]] = {"operationId": target["operationId"], "parameters": parameters}
        if links:
            source["responses"][status].setdefault("links", {}).update(links)
    return spec


def _parameters_for(path: str, operation: dict[str, Any], provides: dict[str, str]) -> dict[str, str] | None:
    """The link parameters of `operation` that `provides` fills; None when a path parameter stays empty."""
    parameters = {}
    for parameter in operation.get("parameters", []):
        name, where = parameter["name"], parameter["in"]
        value = TAKES.get(name)
        if value in provides:
            suffix = SUFFIXES.get((path, name))
            parameters[f"{where}.{name}"] = "{" + provides[value] + "}" + suffix if suffix else provides[value]
        elif where == "path":
            return None
    return parameters or None
