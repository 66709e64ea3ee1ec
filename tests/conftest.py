"""Shared pytest fixtures.

``fixture_model`` hands tests the fetcher of real ONNX models, so a test asks for a
model by name and gets a verified local path::

    def test_x(fixture_model):
        p = fixture_model("ppocrv4_det")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixture_models import MODELS, fixture_path


@pytest.fixture(scope="session")
def fixture_model() -> Callable[..., Path]:
    """The function ``fixture_path(name) -> Path`` (fetches into the cache on first use)."""
    return fixture_path


@pytest.fixture(scope="session")
def fixture_model_names() -> list[str]:
    """Names of all fixture models, for tests that run over every real model."""
    return sorted(MODELS)
