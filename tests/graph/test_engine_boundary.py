"""The graph engine knows nothing of drawing or of the web: importing any of its modules loads neither
the view package, the server nor FastAPI, and no engine source names them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "app" / "graph"
OUTSIDE = ("fastapi", "starlette", "app.view", "app.server")

# An import of the view, the server or the web framework, or a path or dotted name of the first two.
MENTION = re.compile(r"\bapp[./](view|server)\b|\bfrom \.\.(view|server)\b|\b(import|from) (fastapi|starlette)\b")

CHECK = f"""
import importlib, pkgutil, sys
import app.graph
for module in pkgutil.walk_packages(app.graph.__path__, "app.graph."):
    importlib.import_module(module.name)
loaded = sorted(m for m in sys.modules if m.startswith({OUTSIDE!r}))
assert not loaded, loaded
"""


def test_importing_the_engine_loads_no_view_and_no_web() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr


def test_no_engine_source_names_the_view_or_the_server() -> None:
    sources = sorted(ENGINE.rglob("*.py"))
    assert len(sources) > 10
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sources
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if MENTION.search(line)
    ]
    assert not found, "\n".join(found)
