"""A real `uvicorn` process of the service on a free loopback port, and a real job worker, for tests and
the benchmark."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`onnx-workbench serve` (via `python -m app.cli`) with its own data folder; stop() always kills it."""

    def __init__(
        self,
        data_dir: Path,
        workers: int = 1,
        port: int | None = None,
        env: dict[str, str] | None = None,
        prefix: list[str] | None = None,
        args: list[str] | None = None,
    ):
        self.data_dir = data_dir
        self.prefix = prefix or []  # a command the server runs under, e.g. nsenter into a mount namespace
        self.workers = workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        self.args = args or []  # more options of the command, e.g. ["--job-broker", url]
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
        ]

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 60.0) -> ServerProcess:
        repo = Path(__file__).resolve().parents[2]
        self.log = open(self.data_dir.parent / f"{self.command()[0]}-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "app.cli", *self.command(), *self.args],
            cwd=repo,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command()[0]} exited with {self.proc.returncode}; log: {self.log.name}")
            if self.ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.command()[0]} was not ready within {timeout} s; log: {self.log.name}")

    def pids(self) -> list[int]:
        """The process and its children (uvicorn's workers, Celery's pool processes)."""
        assert self.proc is not None
        try:
            main = psutil.Process(self.proc.pid)
            return [main.pid, *(c.pid for c in main.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL to the whole process group (uvicorn's supervisor and its workers): no clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        if hasattr(self, "log"):
            self.log.close()

    def __enter__(self) -> ServerProcess:
        """Starts the process unless it was started already (`with ServerProcess(...).start() as s`): a second
        start would find the first one answering on the port, call itself ready, and leave that one running."""
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cpus_but_the_first() -> str | None:
    """`worker --cpus` leaving the first CPU to the API on the same machine; None on one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    return ",".join(map(str, cpus[1:])) if len(cpus) > 1 else None


class WorkerProcess(ServerProcess):
    """`onnx-workbench worker` on a shared data folder; ready once Celery says so in its log. `port` only
    names its log file."""

    def __init__(
        self, data_dir: Path, broker: str, concurrency: int = 1, cpus: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(data_dir, **kwargs)
        self.broker = broker
        self.concurrency = concurrency
        self.cpus = cpus  # `worker --cpus`

    def command(self) -> list[str]:
        return [
            "worker",
            "--job-broker",
            self.broker,
            "--data-dir",
            str(self.data_dir),
            "--concurrency",
            str(self.concurrency),
            *(["--cpus", self.cpus] if self.cpus is not None else []),
        ]

    def ready(self) -> bool:
        return b" ready." in Path(self.log.name).read_bytes()


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """Debian's redis-server on a free loopback port, no persistence, its log in ``folder``; its URL (as the job
    broker). RuntimeError when it is not installed or does not start; stopped on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed: `make system-deps` installs it (apt-get install redis-server)"
        )
    port = free_port()
    log = folder / "redis.log"
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*command, "--logfile", str(log)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}: see {log}") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
