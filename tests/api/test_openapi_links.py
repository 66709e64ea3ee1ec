"""The OpenAPI links lead from an answer to the requests that take its values, and following them works."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from .conftest import upload


def _operations(spec: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        op["operationId"]: (method.upper(), path) for path, item in spec["paths"].items() for method, op in item.items()
    }


def _links(spec: dict[str, Any], method: str, path: str, status: str) -> dict[str, Any]:
    return spec["paths"][path][method]["responses"][status].get("links", {})


def _follow(
    link: dict[str, Any], operations: dict[str, tuple[str, str]], response: Any, request_path: dict[str, str]
) -> tuple[str, str, dict[str, str]]:
    """The request a link describes: method, URL and query, with its runtime expressions evaluated."""

    def value(expression: str) -> str:
        def one(match: re.Match[str]) -> str:
            source, _, pointer = match.group(1).partition("#")
            if source == "$response.body":
                found: Any = response.json()
                for part in pointer.strip("/").split("/"):
                    found = found[int(part)] if isinstance(found, list) else found[part]
                return str(found)
            return request_path[source.removeprefix("$request.path.")]

        return re.sub(r"\{?(\$[^{}]+)\}?", one, expression)

    method, path = operations[link["operationId"]]
    query = {}
    for key, expression in link["parameters"].items():
        where, name = key.split(".")
        if where == "path":
            path = path.replace("{" + name + "}", value(expression))
        else:
            query[name] = value(expression)
    return method, path, query


def test_upload_links_every_session_route_with_the_id_and_version(client: TestClient, fixture_model) -> None:
    spec = client.get("/openapi.json").json()
    operations = _operations(spec)
    links = _links(spec, "post", "/api/sessions", "201")
    targets = {operations[link["operationId"]][1] for link in links.values()}
    session_routes = {path for path in spec["paths"] if re.fullmatch(r"/api/sessions/\{session_id\}[^{}]*", path)}
    assert targets == session_routes
    undo = next(link for link in links.values() if operations[link["operationId"]][1].endswith("/undo"))
    assert undo["parameters"] == {
        "path.session_id": "$response.body#/id",
        "query.expected_version": "$response.body#/version",
    }


def test_following_the_links_chains_real_requests(client: TestClient, fixture_model) -> None:
    """upload -> edit -> undo at the version the edit answered; graph -> its first node and the weight it reads."""
    spec = client.get("/openapi.json").json()
    operations = _operations(spec)
    sid = upload(client, fixture_model("light_resnet50"))
    graph = client.get(f"/api/sessions/{sid}/graph")
    by_target = {
        operations[link["operationId"]]: link
        for link in _links(spec, "get", "/api/sessions/{session_id}/graph", "200").values()
    }
    for target in (
        "/api/sessions/{session_id}/nodes/{node_id}",
        "/api/sessions/{session_id}/tensors/{name}",
        "/api/sessions/{session_id}/histogram/{name}",
    ):
        method, url, query = _follow(by_target["GET", target], operations, graph, {"session_id": sid})
        assert client.request(method, url, params=query).status_code == 200, url

    node = graph.json()["graph"]["nodes"][0]["id"]
    edited = client.post(f"/api/sessions/{sid}/edits", json={"edits": [{"op": "rename_node", "node": node, "to": "a"}]})
    assert edited.status_code == 200
    undo = next(
        link
        for link in _links(spec, "post", "/api/sessions/{session_id}/edits", "200").values()
        if operations[link["operationId"]][1].endswith("/undo")
    )
    method, url, query = _follow(undo, operations, edited, {"session_id": sid})
    assert query == {"expected_version": "1"}
    assert client.request(method, url, params=query).status_code == 200
