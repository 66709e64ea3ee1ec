"""Quantization jobs: analyses per minute and API edit latency while they run, embedded vs Celery workers.

    python -m bench.jobs --rounds 3                       # ppocrv4_det, 4 analyses per setup and round
    python -m bench.jobs --model picodet_layout --jobs 2 --setups embedded

Every setup starts from scratch on free 127.0.0.1 ports with its own data folder:
  embedded   one `onnx-workbench serve` process: the analyses run on its job thread, one at a time;
  workers-N  (N = 1, 2) `serve --job-broker redis://...`, a redis-server and N
             `onnx-workbench worker --concurrency 1` on the same data folder.
The model is uploaded for the analyses, and minilm_l6_int8 (as in bench/api.py) for edits: small edits
(rename_node back and forth, one every --pause seconds) are timed on the idle service, then --jobs
default analyses are submitted at once (scikit-image's 19 photos as images, with the model's ImageNet
preprocessing, as bench/quant.py's default suite) and the same edits are timed until the last analysis
ends. Printed per
setup: analyses per minute (and against embedded, measured in the same run), each analysis' own run time,
edit latency median and p95 idle and busy, the peak RSS of the processes that ran the analyses, and the
CPU the machine's other processes took meanwhile, in cores (it is shared). With --rounds R the setups take
turns R times and the last table sums the rounds up. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import onnx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api import rename_edits, tree_rss  # noqa: E402
from bench.common import markdown_table, percentile  # noqa: E402
from bench.quant import IMAGENET, PHOTOS, picodet_layout, ppocr_det  # noqa: E402
from tests.api.server_process import ServerProcess, WorkerProcess, cpus_but_the_first, redis_server  # noqa: E402
from tests.fixture_models import fixture_path  # noqa: E402

MODELS = {"ppocrv4_det": ppocr_det, "picodet_layout": picodet_layout}
TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")


@dataclass
class Setup:
    """A running service: where its API answers, and the processes that run its analyses."""

    name: str
    url: str
    job_processes: Callable[[], list[int]]


@dataclass
class Figures:
    setup: str
    others: float = 0.0  # cores busy with processes that are not this bench's, during the analyses
    minutes: float = 0.0
    analysis_s: list[float] = field(default_factory=list)
    idle: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    peak_rss: int = 0

    def per_minute(self) -> float:
        return len(self.analysis_s) / self.minutes


@contextmanager
def embedded(folder: Path) -> Iterator[Setup]:
    data = folder / "data"
    data.mkdir()
    with ServerProcess(data) as server:
        assert server.proc is not None
        pid = server.proc.pid
        yield Setup("embedded", server.url, lambda: [pid])


def distributed(workers: int, pinned: bool = False) -> Callable[[Path], AbstractContextManager[Setup]]:
    """API, Redis and ``workers`` workers; ``pinned``: the workers leave the first CPU to the API (`--cpus`)."""
    cpus = cpus_but_the_first() if pinned else None

    @contextmanager
    def start(folder: Path) -> Iterator[Setup]:
        data = folder / "data"
        data.mkdir()
        with redis_server(folder) as broker, ExitStack() as stack:
            api = stack.enter_context(ServerProcess(data, args=["--job-broker", broker]))
            pool = [stack.enter_context(WorkerProcess(data, broker, concurrency=1, cpus=cpus)) for _ in range(workers)]
            name = f"workers-{workers}{'-pinned' if pinned else ''}"
            yield Setup(name, api.url, lambda: [w.proc.pid for w in pool if w.proc is not None])

    return start


class PeakRss:
    """Samples the resident memory of each job process (with its children) every 0.2 s; keeps the largest."""

    def __init__(self, pids: Callable[[], list[int]]):
        self.pids = pids
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.wait(0.2):
            for pid in self.pids():
                try:
                    self.peak = max(self.peak, tree_rss(pid))
                except psutil.Error:
                    pass  # a process that just ended

    def __enter__(self) -> PeakRss:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


class OtherCpu:
    """Cores the machine's other processes kept busy during the block: all busy CPU time less this bench's
    own (this process and every process it started, still running at the end)."""

    def __init__(self) -> None:
        self.cores = 0.0

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        times = psutil.cpu_times()
        busy = sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))
        me = psutil.Process()
        ours = 0.0
        for process in [me, *me.children(recursive=True)]:
            try:
                cpu = process.cpu_times()
                ours += cpu.user + cpu.system
            except psutil.Error:
                pass  # a process that just ended
        return time.monotonic(), busy, ours

    def __enter__(self) -> OtherCpu:
        self.start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        self.cores = max(0.0, (end[1] - self.start[1]) - (end[2] - self.start[2])) / (end[0] - self.start[0])


def upload(client: httpx.Client, model: Path) -> str:
    with open(model, "rb") as f:
        r = client.post("/api/sessions", files={"file": (model.name, f)})
    r.raise_for_status()
    return r.json()["id"]


def submit(client: httpx.Client, sid: str, photos: list[Path], size: tuple[int, int]) -> str:
    """The default analysis on the photos as images, resized and normalised by the service."""
    fields = {
        "size": f"{size[0]}x{size[1]}",
        "mean": ",".join(str(m) for m in IMAGENET["mean"]),
        "std": ",".join(str(s) for s in IMAGENET["std"]),
        "channel_order": "rgb",
    }
    r = client.post(
        f"/api/sessions/{sid}/quant",
        files=[("data", (p.name, p.read_bytes())) for p in photos],
        data=fields,
    )
    if r.status_code != 202:
        raise SystemExit(f"submitting an analysis failed: {r.status_code} {r.text}")
    return r.json()["job_id"]


def wait_all(client: httpx.Client, job_ids: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [client.get(f"/api/jobs/{job_id}").json() for job_id in job_ids]
        if all(s["state"] in TERMINAL for s in states):
            failed = [s for s in states if s["state"] != "succeeded"]
            if failed:
                raise SystemExit(f"analyses did not succeed: {failed[0]['state']} {failed[0].get('error')}")
            return states
        time.sleep(0.5)
    raise SystemExit(f"the analyses did not end within {timeout:.0f} s")


def measure(setup: Setup, model: Path, size: tuple[int, int], photos: list[Path], args: argparse.Namespace) -> Figures:
    figures = Figures(setup.name)
    with httpx.Client(base_url=setup.url, timeout=300) as client:
        analysed, edited = upload(client, model), upload(client, fixture_path("minilm_l6_int8"))
        node = client.get(f"/api/sessions/{edited}/graph").json()["graph"]["nodes"][0]["id"]
        idle_until = time.perf_counter() + args.idle_seconds
        figures.idle = rename_edits(client, edited, node, lambda: time.perf_counter() >= idle_until, args.pause)
        finished = threading.Event()
        busy: list[list[float]] = []
        editor = threading.Thread(
            target=lambda: busy.append(rename_edits(client, edited, node, finished.is_set, args.pause)), daemon=True
        )
        with PeakRss(setup.job_processes) as rss, OtherCpu() as others:
            started = time.time()
            job_ids = [submit(client, analysed, photos, size) for _ in range(args.jobs)]
            editor.start()
            try:
                states = wait_all(client, job_ids, args.timeout)
            finally:
                finished.set()
                editor.join()
        figures.others = others.cores
        figures.busy = busy[0]
        figures.peak_rss = rss.peak
        figures.minutes = (max(s["finished"] for s in states) - started) / 60
        figures.analysis_s = [s["finished"] - s["started"] for s in states]
    return figures


def report(runs: dict[str, list[Figures]], model: str, args: argparse.Namespace) -> str:
    """One row per setup over its rounds: the median round's rate, the median analysis, every edit pooled
    (median and p95), the largest peak RSS and the median of the other processes' CPU."""
    rates = {name: statistics.median(r.per_minute() for r in rounds) for name, rounds in runs.items()}
    cells = []
    for name, rounds in runs.items():
        idle = [t * 1000 for r in rounds for t in r.idle]
        busy = [t * 1000 for r in rounds for t in r.busy]
        cells.append(
            [
                name,
                f"{rates[name]:.2f}",
                f"{rates[name] / rates['embedded']:.2f}x" if "embedded" in rates else "-",
                f"{statistics.median(t for r in rounds for t in r.analysis_s):.1f}",
                f"{statistics.median(idle):.1f} / {percentile(idle, 95):.1f} ({len(idle)})",
                f"{statistics.median(busy):.1f} / {percentile(busy, 95):.1f} ({len(busy)})",
                f"{percentile(busy, 95) / percentile(idle, 95):.1f}x",
                f"{max(r.peak_rss for r in rounds) / 2**30:.2f}",
                " / ".join(f"{r.others:.2f}" for r in rounds),
            ]
        )
    headers = [
        "setup",
        "analyses/min",
        "vs embedded",
        "analysis s (median)",
        "edit ms idle: median / p95 (n)",
        "edit ms busy: median / p95 (n)",
        "p95 busy / idle",
        "peak RSS per job process (GiB)",
        "other processes (cores, per round)",
    ]
    rounds = max(len(r) for r in runs.values())
    title = (
        f"{model}, {len(PHOTOS)} photos, default analysis, {args.jobs} submitted at once, {rounds} round(s); "
        f"an edit every {args.pause} s; {os.cpu_count()} CPUs"
    )
    return title + "\n\n" + markdown_table(headers, cells)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="ppocrv4_det")
    parser.add_argument("--jobs", type=int, default=4, help="analyses submitted at once per setup")
    parser.add_argument("--setups", default="embedded,workers-1,workers-2", help="comma-separated, of these")
    parser.add_argument("--pause", type=float, default=0.1, help="seconds between two edits")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="edits timed before the analyses")
    parser.add_argument("--rounds", type=int, default=1, help="turns of every setup (figures over all)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds the analyses of a setup may take")
    args = parser.parse_args(argv)
    starters = {
        "embedded": embedded,
        "workers-1": distributed(1),
        "workers-2": distributed(2),
        "workers-2-pinned": distributed(2, pinned=True),
    }
    chosen = [s for s in args.setups.split(",") if s]
    unknown = set(chosen) - set(starters)
    if unknown:
        parser.error(f"unknown setups: {', '.join(sorted(unknown))} (known: {', '.join(starters)})")
    built = MODELS[args.model]()
    if built is None:
        raise SystemExit(f"{args.model} is not available (python -m tests.fixture_models fetches it)")
    import skimage.data

    photos = [Path(skimage.data.__file__).parent / name for name in PHOTOS]
    runs: dict[str, list[Figures]] = {name: [] for name in chosen}
    with tempfile.TemporaryDirectory(prefix="onnx-workbench-jobs-") as tmp:
        model = Path(tmp) / f"{args.model}.onnx"
        onnx.save(built, model)
        dims = [d.dim_value for d in built.graph.input[0].type.tensor_type.shape.dim]
        for round_ in range(args.rounds):  # the setups take turns, so that a change of the machine's load
            for name in chosen:  # falls on all of them
                folder = Path(tmp) / f"{name}-{round_}"
                folder.mkdir()
                with starters[name](folder) as setup:
                    runs[name].append(measure(setup, model, (dims[2], dims[3]), photos, args))
                print(report({name: runs[name][-1:]}, args.model, args), flush=True)
    print()
    print(report(runs, args.model, args))


if __name__ == "__main__":
    main()
