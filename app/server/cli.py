"""`onnx-workbench serve`: start the web service under uvicorn; `onnx-workbench worker`: a Celery worker
that runs the jobs of `serve --job-broker` (celery_jobs.py).

Options become ONNX_WORKBENCH_* environment variables before uvicorn starts, so that every worker
process builds the same app from the same settings (`create_app` reads them).
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

from .settings import ENV_PREFIX

LOG_LEVELS = ["critical", "error", "warning", "info", "debug"]


def _data_dir(args: argparse.Namespace) -> Path:
    data_dir = Path(args.data_dir or os.environ.get(ENV_PREFIX + "DATA") or "data").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ[ENV_PREFIX + "DATA"] = str(data_dir)
    if args.job_broker:
        os.environ[ENV_PREFIX + "JOB_BROKER"] = args.job_broker
    return data_dir


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    data_dir = _data_dir(args)
    if args.max_upload_mb is not None:
        os.environ[ENV_PREFIX + "MAX_UPLOAD_BYTES"] = str(args.max_upload_mb << 20)
    if args.session_ttl_hours is not None:
        os.environ[ENV_PREFIX + "SESSION_TTL_SECONDS"] = str(int(args.session_ttl_hours * 3600))
    jobs = (
        "jobs to " + _hide_password(os.environ[ENV_PREFIX + "JOB_BROKER"])
        if os.environ.get(ENV_PREFIX + "JOB_BROKER")
        else "jobs in process"
    )
    print(
        f"onnx-workbench: serving on http://{args.host}:{args.port} (data in {data_dir}, "
        f"{args.workers} worker{'s' if args.workers > 1 else ''}, {jobs})",
        flush=True,
    )
    config = uvicorn.Config(
        "app.server.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        timeout_graceful_shutdown=10,
    )
    if args.workers == 1:
        uvicorn.Server(config).run()
        return 0
    from uvicorn.supervisors import Multiprocess

    Multiprocess(config, sockets=[_tcp_socket(args.host, args.port)]).run()
    return 0


def _worker(args: argparse.Namespace) -> int:
    """A Celery worker running the jobs that `serve --job-broker` sends, on the same data folder."""
    from .celery_jobs import run_worker
    from .job_kinds import KINDS
    from .session_store import LocalSessionStore
    from .settings import Settings

    data_dir = _data_dir(args)
    if args.concurrency is not None:
        os.environ[ENV_PREFIX + "JOB_CONCURRENCY"] = str(args.concurrency)
    settings = Settings.from_env()
    if not settings.job_broker:
        raise SystemExit(f"onnx-workbench worker: give --job-broker redis://HOST:6379/0 (or {ENV_PREFIX}JOB_BROKER)")
    os.nice(args.nice)  # analyses yield the CPU to an API on the same machine; the pool processes inherit it
    if args.cpus is not None:  # inherited too; the priority alone leaves the API's edits twice as slow
        os.sched_setaffinity(0, args.cpus)
    print(
        f"onnx-workbench: worker on {_hide_password(settings.job_broker)} (data in {data_dir}, "
        f"{settings.job_concurrency} at once, nice {os.nice(0)}, CPUs {_cpu_text(os.sched_getaffinity(0))})",
        flush=True,
    )
    return run_worker(settings, KINDS, LocalSessionStore(settings).session_dir, args.log_level)


def _cpu_list(text: str) -> set[int]:
    """CPUs as taskset lists them ("1", "0-2,5"), each one this process may run on."""
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            cpus.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a CPU list such as 1 or 1-3,5") from None
    available = os.sched_getaffinity(0)
    if not cpus or not cpus <= available:
        raise argparse.ArgumentTypeError(f"'{text}': this machine offers CPUs {_cpu_text(available)}")
    return cpus


def _cpu_text(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def _hide_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{'***@' if at else ''}{host}" if sep else url


def _tcp_socket(host: str, port: int) -> socket.socket:
    """The shared listening socket for several workers, created with proto=IPPROTO_TCP.

    uvicorn creates it with proto 0, and asyncio only sets TCP_NODELAY on connections of sockets
    whose proto is TCP: every answer then waits about 40 ms for a delayed ACK (measured: 50 ms per
    request with 2 workers against 2 ms with one).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        raise SystemExit(f"onnx-workbench: cannot listen on {host}:{port}: {err.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _positive(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not '{text}'")
    return value


def add_server_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="start the web service (REST API and browser editor)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_positive, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--data-dir", type=Path, default=None, help=f"folder for sessions (default ${ENV_PREFIX}DATA, else ./data)"
    )
    serve.add_argument("--workers", type=_positive, default=1, help="worker processes (default 1)")
    serve.add_argument("--max-upload-mb", type=_positive, default=None, help="upload limit in MiB (default 4096)")
    serve.add_argument(
        "--session-ttl-hours", type=float, default=None, help="delete sessions idle this long (default 168, one week)"
    )
    serve.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    serve.add_argument(
        "--job-broker",
        default=None,
        metavar="redis://HOST:6379/0",
        help="send jobs to Celery workers (onnx-workbench worker) through this Redis "
        f"(default ${ENV_PREFIX}JOB_BROKER; unset: jobs run in this process)",
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run the jobs of `serve --job-broker` (a Celery worker)")
    worker.add_argument(
        "--job-broker", default=None, metavar="redis://HOST:6379/0", help=f"default ${ENV_PREFIX}JOB_BROKER"
    )
    worker.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"the API's data folder, shared (default ${ENV_PREFIX}DATA, else ./data)",
    )
    worker.add_argument(
        "--concurrency",
        type=_positive,
        default=None,
        help=f"jobs at once (default ${ENV_PREFIX}JOB_CONCURRENCY, else 1)",
    )
    worker.add_argument("--nice", type=int, default=10, help="CPU priority lowered by this much (default 10)")
    worker.add_argument(
        "--cpus",
        type=_cpu_list,
        default=None,
        metavar="LIST",
        help="run only on these CPUs, as taskset writes them (e.g. 1 or 1-3,5): on the API's own machine, "
        "leave it a core so that edits stay fast while analyses run (default: all)",
    )
    worker.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    worker.set_defaults(run=_worker)
