"""`onnx-workbench serve` refuses bad options with a message before starting anything."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_bad_numbers_are_refused(tmp_path: Path) -> None:
    for option, value in (("--workers", "0"), ("--port", "x"), ("--max-upload-mb", "-5")):
        result = serve(option, value, "--data-dir", str(tmp_path))
        assert result.returncode == 2
        assert f"argument {option}: must be a whole number of at least 1" in result.stderr


def test_a_busy_port_is_a_one_line_error_with_several_workers(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = serve("--port", str(port), "--workers", "2", "--data-dir", str(tmp_path))
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
