"""The Dockerfile, checked without a Docker engine: its install is the README's, its CMD is a real
`serve` command line that starts, its HEALTHCHECK passes against that server, and its build context
(.dockerignore applied) holds everything `pip install` needs."""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from app.cli import build_parser

from .models import big_tensor_model
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


# -- compose.yaml and its proxy ----------------------------------------------------------------------
def compose() -> dict[str, Any]:
    """compose.yaml as Compose reads it (YAML merge keys resolved)."""
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _mount(volume: str) -> tuple[str, str]:
    source, target = volume.split(":")[:2]
    return source, target


def test_compose_runs_redis_two_api_replicas_behind_one_port_and_two_workers_on_one_volume() -> None:
    spec = compose()
    services = spec["services"]
    assert set(services) == {"redis", "api", "worker", "proxy"}
    assert services["redis"]["image"].startswith("redis:")
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in ("api", "worker"):
        service = services[name]
        assert service["build"] == "." and (ROOT / "Dockerfile").is_file()  # the project's image
        assert service["deploy"]["replicas"] == 2
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert [_mount(v) for v in service["volumes"]] == [("workbench-data", "/data")]
        assert "ports" not in service  # only the proxy is published
    assert set(spec["volumes"]) == {"workbench-data", "redis-data"}
    assert services["api"]["environment"] == {"ONNX_WORKBENCH_TOKEN": "${ONNX_WORKBENCH_TOKEN:-}"}  # unset: no token
    assert services["worker"]["healthcheck"] == {"disable": True}  # the image's check asks the API's /healthz
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:") and proxy["depends_on"]["api"]["condition"] == "service_healthy"
    assert proxy["ports"] == ["${PORT:-8000}:8000"]
    assert [v.split(":")[:2] for v in proxy["volumes"]] == [["./deploy/nginx.conf", "/etc/nginx/conf.d/default.conf"]]
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "listen 8000;" in site and "server api:8000;" in site  # the published port, every replica of `api`


def test_compose_commands_are_real_command_lines_with_one_broker_and_the_volume_as_data_dir() -> None:
    services = compose()["services"]
    parser = build_parser()
    api = parser.parse_args(services["api"]["command"][1:])
    worker = parser.parse_args(services["worker"]["command"][1:])
    assert services["api"]["command"][0] == services["worker"]["command"][0] == "onnx-workbench"
    assert api.command == "serve" and api.host == "0.0.0.0" and api.port == 8000  # the port nginx.conf proxies to
    assert worker.command == "worker" and worker.concurrency == 1
    assert str(api.data_dir) == str(worker.data_dir) == "/data"  # where the volume is mounted
    broker = urlsplit(api.job_broker)
    assert api.job_broker == worker.job_broker and broker.scheme == "redis"
    assert broker.hostname in services and broker.port == 6379  # the redis service, on its default port


class Nginx:
    """Debian's nginx running deploy/nginx.conf as written, but for the two lines that name Docker's network:
    `listen 8000` becomes a free loopback port, `server api:8000` the replicas' loopback ports."""

    def __init__(self, folder: Path, replicas: list[int]):
        self.folder = folder
        self.port = free_port()
        site = (ROOT / "deploy" / "nginx.conf").read_text()
        servers = " ".join(f"server 127.0.0.1:{port};" for port in replicas)
        site = site.replace("server api:8000;", servers).replace("listen 8000;", f"listen 127.0.0.1:{self.port};")
        (folder / "site.conf").write_text(site)
        (folder / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {folder}/nginx.pid;\n"
            + ("user root;\n" if os.geteuid() == 0 else "")
            + "events { worker_connections 64; }\nhttp {\n"
            + "  log_format upstream '$upstream_addr $status';\n"
            + f"  access_log {folder}/access.log upstream;\n"
            + f"  client_body_temp_path {folder}/body;\n  proxy_temp_path {folder}/proxy;\n"
            + f"  include {folder}/site.conf;\n}}\n"
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Nginx:
        command = ["nginx", "-p", str(self.folder), "-e", str(self.folder / "error.log"), "-c"]
        check = subprocess.run([*command, str(self.folder / "nginx.conf"), "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([*command, str(self.folder / "nginx.conf")], start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"nginx did not answer: {(self.folder / 'error.log').read_text()}")

    def upstreams(self) -> list[str]:
        return [line.split()[0] for line in (self.folder / "access.log").read_text().splitlines()]

    def __exit__(self, *exc: object) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def test_the_proxy_spreads_requests_over_both_replicas_passes_big_uploads_and_streams_job_events(
    tmp_path: Path,
) -> None:
    assert shutil.which("nginx"), "needs Debian's nginx (make system-deps installs nginx-light)"
    data = tmp_path / "data"
    data.mkdir()
    model = big_tensor_model(tmp_path / "big.onnx")  # 12 MB: nginx's default limit would answer 413
    proxy_dir = tmp_path / "nginx"
    proxy_dir.mkdir()
    with ServerProcess(data) as one, ServerProcess(data) as two, Nginx(proxy_dir, [one.port, two.port]) as proxy:
        with httpx.Client(base_url=proxy.url, timeout=60) as client:
            r = client.post("/api/sessions", files={"file": (model.name, model.read_bytes())})
            assert r.status_code == 201, r.text
            sid = r.json()["id"]
            for version in range(1, 5):  # every edit acknowledged by one replica is seen by the other
                edit = {"op": "rename_node", "node": "mul" if version % 2 else "m", "to": "m" if version % 2 else "mul"}
                r = client.post(f"/api/sessions/{sid}/edits", json={"edits": [edit], "expected_version": version - 1})
                assert r.status_code == 200 and r.json()["version"] == version, r.text
            r = client.post(f"/api/sessions/{sid}/quant", data={"random": "2", "end_to_end": "false"})
            assert r.status_code == 202, r.text
            events = []
            with client.stream(
                "GET", f"/api/jobs/{r.json()['job_id']}", headers={"Accept": "text/event-stream"}
            ) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                events = [json.loads(line[5:]) for line in stream.iter_lines() if line.startswith("data:")]
            assert events and events[-1]["state"] == "succeeded", events[-3:]
        assert set(proxy.upstreams()) == {f"127.0.0.1:{one.port}", f"127.0.0.1:{two.port}"}
