"""Fixtures of the API tests: an app on a temporary data folder, driven over HTTP by TestClient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.graph import load_model, save_model
from app.server.app import create_app
from app.server.settings import Settings

from .server_process import redis_server


def make_client(data_dir: Path, **overrides: Any) -> TestClient:
    return TestClient(create_app(Settings(data_dir=data_dir, **overrides)))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def client(data_dir: Path) -> Iterator[TestClient]:
    with make_client(data_dir) as c:
        yield c


def upload(client: TestClient, path: Path, *data: Path) -> str:
    """Open a session on a model file (and its external-data files); returns the session id."""
    files = [("file", (path.name, path.read_bytes()))] + [("data", (d.name, d.read_bytes())) for d in data]
    r = client.post("/api/sessions", files=files)
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture
def open_session(client: TestClient, fixture_model: Callable[[str], Path]) -> Callable[[str], str]:
    """open_session("ppocrv4_det") -> session id of a fresh upload of that fixture model."""
    return lambda name: upload(client, fixture_model(name))


@pytest.fixture(scope="session")
def external_model(tmp_path_factory: pytest.TempPathFactory, fixture_model: Callable[[str], Path]) -> list[Path]:
    """minilm_l6_int8 saved with its weights in an external data file: [model, data]."""
    folder = tmp_path_factory.mktemp("external")
    written = save_model(load_model(fixture_model("minilm_l6_int8")), folder / "minilm.onnx", external=True)
    assert len(written) == 2
    return written


def get_ok(client: TestClient, url: str, **params: Any) -> dict[str, Any]:
    """The JSON body of a GET that must answer 200."""
    r = client.get(url, params=params or None)
    assert r.status_code == 200, r.text
    return r.json()


def error_of(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The error body of a response, after checking its status, shape and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of the tests' own on a free loopback port (no persistence), stopped at the end. CI
    installs Debian's redis-server (make system-deps): a missing one fails the tests rather than skipping them."""
    try:
        with redis_server(tmp_path_factory.mktemp("redis")) as url:
            yield url
    except RuntimeError as err:
        pytest.fail(str(err))
