"""The Dockerfile, checked without a Docker engine: its install is the README's, its CMD is a real
`serve` command line that starts, its HEALTHCHECK passes against that server, and its build context
(.dockerignore applied) holds everything `pip install` needs."""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from app.cli import build_parser

from .server_process import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def exec_form(args: str) -> list[str]:
    return json.loads(args[args.index("[") :])


def test_base_user_volume_and_install_match_the_readme() -> None:
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [a for i, a in steps if i == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("VOLUME", '["/data"]') in steps
    assert "ONNX_WORKBENCH_DATA=/data" in dict(steps)["ENV"]
    runs = " ".join(a for i, a in steps if i == "RUN")
    assert "python -m pip install /src" in runs  # the README's `pip install` of this repository
    readme = (ROOT / "README.md").read_text()
    assert "docker build" in readme and "docker run" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -e ." in makefile and "onnx-workbench serve" in makefile


def test_cmd_is_a_valid_serve_command_and_the_healthcheck_passes(tmp_path: Path) -> None:
    steps = dict(instructions())
    cmd = exec_form(steps["CMD"])
    assert cmd[0] == "onnx-workbench"
    args = build_parser().parse_args(cmd[1:])
    assert args.command == "serve" and args.host == "0.0.0.0" and args.port == 8000 and str(args.data_dir) == "/data"
    check = exec_form(steps["HEALTHCHECK"].split("CMD", 1)[1])
    assert "/healthz" in check[-1]
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    with ServerProcess(data, port=port):
        probe = [sys.executable if a == "python" else a.replace(":8000/", f":{port}/") for a in check]
        assert subprocess.run(probe, timeout=30).returncode == 0
    assert (
        subprocess.run(
            [sys.executable if a == "python" else a.replace(":8000/", f":{port}/") for a in check],
            capture_output=True,
            timeout=30,
        ).returncode
        != 0
    )  # and fails when nothing answers


def _ignored(rel: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        candidates = [rel] + ([rel.rsplit("/", 1)[-1]] if pattern.startswith("**/") else [])
        parts = rel.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts))]
        if any(fnmatch.fnmatch(c, bare) for c in candidates + prefixes) or any(
            fnmatch.fnmatch(p.rsplit("/", 1)[-1], bare) for p in prefixes if pattern.startswith("**/")
        ):
            return True
    return False


@pytest.mark.slow
def test_build_context_installs_with_everything_the_service_needs(tmp_path: Path) -> None:
    patterns = [
        p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")
    ]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    context = tmp_path / "context"
    for rel in tracked:
        if not _ignored(rel, patterns) and (ROOT / rel).is_file():
            (context / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, context / rel)
    assert not (context / "tests").exists() and not (context / ".git").exists()
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    names = zipfile.ZipFile(next(wheels.glob("*.whl"))).namelist()
    for needed in ("app/cli.py", "app/server/app.py", "app/server/cli.py", "app/graph/document.py"):
        assert needed in names, shlex.quote(needed)
    assert any(n.startswith("app/templates/") for n in names) and any(n.startswith("app/static/") for n in names)
