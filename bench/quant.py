"""Benchmark of the quantization analysis (prints a table; nothing is asserted).

For a ResNet-50-shaped model (onnx.helper, random weights, 1x3x224x224) and PP-OCRv4 det
at 1x3x640x640: our statistics+ranges time over plain onnxruntime inference on the same
samples in the same process, the speed-up over onnxruntime's EntropyCalibrater (2048
bins), and peak RSS per configuration, each measured in its own child process.

    python bench/quant.py --suite stats [--samples 32] [--rss-samples 32 128] [--repeats 3] [--skip-ort-entropy]
                          [--ort-entropy-models resnet50] [--rss-only] [--models ppocrv4_det]

Peak RSS is measured in children that run only the analysis (no plain-inference session beside it).
"activations only" runs the statistics pass's own onnxruntime session (every quantization point
an output, one batch held while the next runs) without computing any statistic: the cost of
observing every activation at all, which no statistics code can go below.

onnxruntime's EntropyCalibrater keeps every activation of every sample in memory (about 0.6 GB
per PP-OCRv4 sample at 640x640), so --ort-entropy-models limits it to the models that fit.

The "default" suite runs the analysis as the service runs it (default QuantOptions: statistics,
ranges, end-to-end and the hybrid search; then build_report and the JSON file the service writes)
on two real detectors fed 19 real photos: PP-OCRv4 det at 1x3x640x640 and PaddleDetection's PicoDet
layout detector at 1x3x800x608 (many small layers). The photos are the ones scikit-image ships inside
its wheel (read from the installed package, never fetched), resized and normalised by the service's
own image reader with each model's preprocessing (ImageNet mean and std on 0..1 RGB). It prints the
phase breakdown (from the progress callback's phases and timestamps), total time over plain
onnxruntime inference of the same samples (same process, default session options, warmed up, the
fastest of 5 passes: 2 before the analysis, 3 after), peak RSS and the report size, next to
onnxruntime's quantize_static (QDQ, per-tensor, QUInt8 activations, QInt8 weights) with MinMax and
Entropy calibration on the same data. quantize_static keeps every sample's activations by default
(12 GB for PP-OCRv4 at 19 samples), so it runs with its own memory bound, CalibStridedMinMax=1 (one
sample per collection, min/max and histograms merged across them); a child whose RSS passes
--rss-cap-gb is stopped and reported as not fitting. This suite needs scikit-image
(pip install -e '.[test]').

    python bench/quant.py --suite default [--repeats 3] [--models ppocrv4_det picodet_layout]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.graph import load_model  # noqa: E402 - after the path set-up, for a run from a checkout


def resnet50(seed: int = 0) -> onnx.ModelProto:
    """ResNet-50 v1.5 topology, BN folded into conv biases, He-initialised random weights."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    counter = iter(range(10**6))

    def conv(x: str, cin: int, cout: int, k: int, stride: int, relu: bool = True) -> str:
        i = next(counter)
        w = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
        inits.extend(
            [
                numpy_helper.from_array(w, f"W{i}"),
                numpy_helper.from_array((rng.standard_normal(cout) * 0.1).astype(np.float32), f"B{i}"),
            ]
        )
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"W{i}", f"B{i}"],
                [f"conv{i}"],
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[k // 2] * 4,
                name=f"conv{i}",
            )
        )
        if not relu:
            return f"conv{i}"
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"], name=f"relu{i}"))
        return f"relu{i}"

    x = conv("input", 3, 64, 7, 2)
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4))
    x, cin = "pool", 64
    for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for b in range(blocks):
            s = stride if b == 0 else 1
            y = conv(conv(conv(x, cin, width, 1, 1), width, width, 3, s), width, width * 4, 1, 1, relu=False)
            shortcut = conv(x, cin, width * 4, 1, s, relu=False) if b == 0 else x
            i = next(counter)
            nodes += [
                helper.make_node("Add", [y, shortcut], [f"add{i}"], name=f"add{i}"),
                helper.make_node("Relu", [f"add{i}"], [f"out{i}"], name=f"out{i}"),
            ]
            x, cin = f"out{i}", width * 4
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"]), helper.make_node("Flatten", ["gap"], ["flat"])]
    inits += [
        numpy_helper.from_array((rng.standard_normal((1000, 2048)) / np.sqrt(2048)).astype(np.float32), "fcW"),
        numpy_helper.from_array(np.zeros(1000, np.float32), "fcB"),
    ]
    nodes.append(helper.make_node("Gemm", ["flat", "fcW", "fcB"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes,
        "resnet50",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def ppocr_det() -> onnx.ModelProto | None:
    """PP-OCRv4 det with its input fixed to 1x3x640x640 (None if the fixture is unavailable)."""
    try:
        from tests.fixture_models import fixture_path

        doc = load_model(fixture_path("ppocrv4_det"))
    except Exception as exc:  # noqa: BLE001 - a benchmark goes on without the optional model
        print(f"ppocrv4_det unavailable: {exc}", file=sys.stderr)
        return None
    doc.apply([{"op": "fix_dim", "dim": f"p2o.DynamicDimension.{k}", "value": v} for k, v in enumerate([1, 640, 640])])
    return doc.model


def picodet_layout() -> onnx.ModelProto | None:
    """PaddleDetection's PicoDet layout detector, static 1x3x800x608 (None if the fixture is unavailable)."""
    try:
        from tests.fixture_models import fixture_path

        return load_model(fixture_path("picodet_layout")).model
    except Exception as exc:  # noqa: BLE001 - a benchmark goes on without the optional model
        print(f"picodet_layout unavailable: {exc}", file=sys.stderr)
        return None


#: Photographs inside scikit-image's wheel (skimage/data; the others there are synthetic or need pooch).
PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "microaneurysms.png",
    "moon.png",
    "motorcycle_left.png",
    "page.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
)
#: ImageNet mean and std on 0..1 RGB (PP-OCR det's and PicoDet's preprocessing), in 0..255 pixel units.
IMAGENET = {"mean": tuple(255 * m for m in (0.485, 0.456, 0.406)), "std": tuple(255 * v for v in (0.229, 0.224, 0.225))}


def photo_data(model_path: Path, target: Path) -> Path:
    """The photos as one .npz for the model's single input, preprocessed by the service's image reader."""
    import skimage.data

    from app.quant import ImagePreprocess
    from app.quant.analysis import model_inputs
    from app.quant.calibration import ImageData

    folder = Path(skimage.data.__file__).parent
    missing = [name for name in PHOTOS if not (folder / name).is_file()]
    if missing:
        raise SystemExit(f"scikit-image {skimage.__version__} lacks the bundled photos {missing}")
    _, specs = model_inputs(model_path)
    data = ImageData([folder / name for name in PHOTOS], specs, ImagePreprocess(**IMAGENET))
    np.savez(target, **{specs[0].name: np.concatenate([b[specs[0].name] for b in data.batches()])})
    return target


def _random_data(model: onnx.ModelProto, rng: np.random.Generator, folder: Path, n: int) -> Path:
    """n standard-normal samples for the model's single input as one .npz in folder, written once per n."""
    name = model.graph.input[0].name
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    target = folder / f"{name}-{n}.npz"
    if not target.exists():
        np.savez(target, **{name: rng.standard_normal((n, *shape[1:])).astype(np.float32)})
    return target


def _phases(events: list[tuple[float, str, int]], start: float, end: float) -> list[tuple[str, float]]:
    """Seconds per run of progress calls with the same phase and total (the hybrid phase holds both the
    configurations' measurement on the search subset and the search steps), "setup" before the first."""
    spans: list[list] = [["setup", start]]
    for stamp, phase, total in events:
        label = f"{phase} (of {total})"
        if phase != "done" and label != spans[-1][0]:
            spans.append([label, stamp])
    bounds = [t for _, t in spans[1:]] + [end]
    return [(label, stop - begin) for (label, begin), stop in zip(spans, bounds, strict=True)]


def _default_child(model_path: str, data_path: str) -> dict:
    """Plain inference, the default analysis with its report written as the service writes it, then plain
    inference again (after the peak RSS is read, so that the plain session's arena does not count against
    the analysis). The baseline is the fastest plain pass, before or after."""
    import onnxruntime as ort

    from app.quant import QuantOptions, analyze, build_report, write_json
    from app.quant.analysis import model_inputs
    from app.quant.calibration import ArrayData

    model, specs = model_inputs(model_path)
    data = ArrayData(data_path, specs)
    before = _plain_seconds(ort.InferenceSession(model_path, providers=["CPUExecutionProvider"]), data, 2)
    events: list[tuple[float, str, int]] = []
    start = time.perf_counter()
    analysis = analyze(
        model,
        data,
        QuantOptions(),
        progress=lambda done, total, phase: events.append((time.perf_counter(), phase, total)),
    )
    analysed = time.perf_counter()
    report = build_report(analysis)
    report["model"] = {"session": "bench", "version": 1}
    built = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_json(report, Path(tmp) / "report.json")
        written = time.perf_counter()
        size_mb = (Path(tmp) / "report.json").stat().st_size / 1e6
    result = {
        "analysis_s": analysed - start,
        "phases": _phases(events, start, analysed),
        "report_build_s": built - analysed,
        "report_write_s": written - built,
        "report_mb": size_mb,
        "peak_rss_gb": _peak_rss_gb(),
        "tensors": len(analysis.tensors),
        "int16": len(analysis.hybrid.int16) if analysis.hybrid else None,
        "qdq_runs": analysis.hybrid.evaluations if analysis.hybrid else None,
    }
    after = _plain_seconds(ort.InferenceSession(model_path, providers=["CPUExecutionProvider"]), data)
    result["plain_s"] = min(before, after)
    return result


def _plain_seconds(sess, data, passes: int = 3) -> float:
    """Plain inference of every sample, warmed up (one run first), the fastest of ``passes`` passes: the
    baseline the budget is counted in (on a shared machine the slower passes are other loads, and the
    fastest makes the ratio the strictest)."""
    batches = list(data.batches())
    sess.run(None, batches[0])
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        for batch in batches:
            sess.run(None, batch)
        times.append(time.perf_counter() - start)
    return min(times)


def _ort_static_child(method: str, model_path: str, data_path: str) -> dict:
    """onnxruntime's quantize_static on the same samples, with its own options that bound memory."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from app.quant.analysis import model_inputs
    from app.quant.calibration import ArrayData

    _, specs = model_inputs(model_path)
    batches = list(ArrayData(data_path, specs).batches())

    class Reader(CalibrationDataReader):
        """All batches, or the range quantize_static's strided calibration asks for."""

        def __init__(self) -> None:
            self.set_range(0, len(batches))

        def __len__(self) -> int:
            return len(batches)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.it = iter(batches[start_index:end_index])

        def get_next(self) -> dict | None:
            return next(self.it, None)

    # one sample per collect_data call, ranges and histograms merged across calls (CalibMaxIntermediateOutputs
    # is no bound: onnxruntime 1.32's MinMax calibrater drops the outputs it held when it reaches it)
    bound = {"CalibStridedMinMax": 1}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        quantize_static(
            model_path,
            f"{tmp}/model.qdq.onnx",
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=False,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, method),
            extra_options=bound,
        )
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_gb": _peak_rss_gb()}


def _child(mode: str, model_path: str, data_path: str) -> dict:
    """One measurement in this (child) process; returns seconds and peak RSS."""
    if mode == "default":
        return _default_child(model_path, data_path)
    if mode.startswith("ort_static_"):
        return _ort_static_child(mode.removeprefix("ort_static_"), model_path, data_path)
    import onnxruntime as ort

    from app.quant import QuantOptions, analyze
    from app.quant.analysis import model_inputs
    from app.quant.calibration import ArrayData

    model, specs = model_inputs(model_path)  # loaded once, from its path, as the CLI and the service do
    data = ArrayData(data_path, specs)
    result: dict = {}
    if mode == "rss":  # the analysis alone, for its peak RSS
        analyze(model, data, QuantOptions(end_to_end=False))
    elif mode == "ours":
        sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        result["plain_s"] = _plain_seconds(sess, data)
        result["floor_s"] = _activations_only(model.proto, data)
        start = time.perf_counter()
        analyze(model, data, QuantOptions(end_to_end=False))
        result["ours_s"] = time.perf_counter() - start
    elif mode == "ort_entropy":
        from onnxruntime.quantization.calibrate import CalibrationDataReader, CalibrationMethod, create_calibrator

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.it = iter(data.batches())

            def get_next(self) -> dict | None:
                return next(self.it, None)

        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            calibrator = create_calibrator(
                model_path,
                [],
                augmented_model_path=f"{tmp}/aug.onnx",
                calibrate_method=CalibrationMethod.Entropy,
                extra_options={"num_bins": 2048, "num_quantized_bins": 128},
            )
            calibrator.collect_data(Reader())
            calibrator.compute_data()
            result["ort_entropy_s"] = time.perf_counter() - start
    result["peak_rss_gb"] = _peak_rss_gb()
    return result


def _activations_only(model: onnx.ModelProto, data) -> float:
    """Seconds to run the statistics pass's own session (every quantization point an output, the
    previous batch's outputs held) with no statistics at all: what observing every activation costs
    onnxruntime before a single value is counted."""
    from app.quant.analysis import quantizable_points
    from app.quant.runtime import run, session
    from app.quant.stats import augmented_model

    inputs = {s.name for s in data.specs}
    fetched = [p.name for p in quantizable_points(model) if p.name not in inputs]
    sess = session(augmented_model(model, fetched), "basic", arena=False)
    held: list = []
    start = time.perf_counter()
    for batch in data.batches():
        held = [run(sess, fetched, batch)]  # the pass keeps one batch while ORT makes the next
    del held
    return time.perf_counter() - start


def _peak_rss_gb() -> float:
    """This process's own peak RSS: VmHWM. ru_maxrss of a child started by subprocess also counts the
    parent's high-water mark (Linux keeps it across fork/vfork + exec), so a parent that once generated
    128 samples made every child look as large as itself."""
    import resource

    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _run_child(mode: str, model_path: Path, data_path: Path, rss_cap_gb: float | None = None) -> dict | None:
    """One child's result; None if its RSS passed ``rss_cap_gb`` (it is stopped there, before it can
    take the machine's memory)."""
    import psutil

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", mode, str(model_path), str(data_path)],
            stdout=out,
            stderr=err,
            text=True,
            cwd=ROOT,
        )
        watched = psutil.Process(child.pid)
        while child.poll() is None:
            try:
                over = rss_cap_gb is not None and watched.memory_info().rss / 2**30 > rss_cap_gb
            except psutil.NoSuchProcess:
                over = False
            if over:
                child.kill()
                child.wait()
                return None
            time.sleep(0.1)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            raise SystemExit(f"child {mode} failed:\n{err.read()}")
        return json.loads(out.read().strip().splitlines()[-1])


def _saved_models(
    builders: dict[str, Callable[[], onnx.ModelProto | None]], wanted: list[str] | None, folder: Path
) -> Iterator[tuple[str, str, onnx.ModelProto, Path]]:
    """(label, name, model, path) of each available model asked for, saved in ``folder``."""
    for label, build in builders.items():
        name = label.split()[0]
        if wanted and name not in wanted:
            continue
        model = build()
        if model is None:
            continue
        path = folder / f"{name}.onnx"
        onnx.save(model, path)
        yield label, name, model, path


def default_suite(args: argparse.Namespace) -> None:
    """The default analysis on the real detectors with photos, next to onnxruntime's quantize_static."""
    builders = {"ppocrv4_det 1x3x640x640": ppocr_det, "picodet_layout 1x3x800x608": picodet_layout}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, name, _, path in _saved_models(builders, args.models, folder):
            data = photo_data(path, folder / f"{name}.npz")
            runs = [_run_child("default", path, data) for _ in range(args.repeats)]
            plain = statistics.median(r["plain_s"] for r in runs)
            total = [r["analysis_s"] + r["report_build_s"] + r["report_write_s"] for r in runs]
            print(
                f"\n{label}, {len(PHOTOS)} photos, default analysis, medians of {args.repeats} runs: "
                f"{runs[0]['tensors']} points, hybrid int16 {runs[0]['int16']}, {runs[0]['qdq_runs']} QDQ runs"
            )
            print("| phase | s | x plain |\n|---|---|---|")
            phases = [
                (phase, statistics.median(r["phases"][i][1] for r in runs))
                for i, (phase, _) in enumerate(runs[0]["phases"])
            ]
            phases += [
                (f"report {part}", statistics.median(r[f"report_{part}_s"] for r in runs))
                for part in ("build", "write")
            ]
            for phase, seconds in phases + [("total", statistics.median(total)), ("plain inference", plain)]:
                print(f"| {phase} | {seconds:.2f} | {seconds / plain:.1f} |")
            ort_runs = {}
            for method in ("MinMax", "Entropy"):
                got = [_run_child(f"ort_static_{method}", path, data, args.rss_cap_gb) for _ in range(args.ort_repeats)]
                ort_runs[method] = (
                    None
                    if None in got or not got
                    else (statistics.median(g["seconds"] for g in got), max(g["peak_rss_gb"] for g in got))
                )
            rows.append(
                (
                    label,
                    plain,
                    statistics.median(total),
                    statistics.median(t / r["plain_s"] for t, r in zip(total, runs, strict=True)),
                    statistics.median(r["peak_rss_gb"] for r in runs),
                    statistics.median(r["report_mb"] for r in runs),
                    ort_runs,
                )
            )
    print(
        f"\n{len(PHOTOS)} photos; ours: medians of {args.repeats} runs; ORT quantize_static: medians of "
        f"{args.ort_repeats} (peak RSS: the largest)"
    )
    print(
        "| model | plain ORT s | default analysis s | ours / plain | peak RSS ours (GB) | report (MB) | "
        "ORT MinMax s (x plain, GB) | ORT Entropy s (x plain, GB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, plain, ours, ratio, rss, size, ort_runs in rows:
        missing = "not run" if not args.ort_repeats else f"over {args.rss_cap_gb} GB"
        cells = [f"{v[0]:.1f} ({v[0] / plain:.1f}x, {v[1]:.2f})" if v else missing for v in ort_runs.values()]
        print(f"| {label} | {plain:.2f} | {ours:.1f} | {ratio:.1f} | {rss:.2f} | {size:.1f} | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--rss-samples", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-ort-entropy", action="store_true")
    parser.add_argument(
        "--ort-entropy-models",
        nargs="+",
        metavar="NAME",
        help="run onnxruntime's EntropyCalibrater only on these (resnet50, ppocrv4_det)",
    )
    parser.add_argument("--rss-only", action="store_true", help="only the peak RSS runs (no timings, no ORT entropy)")
    parser.add_argument(
        "--models",
        nargs="+",
        metavar="NAME",
        help="only these models (resnet50, ppocrv4_det; default suite: ppocrv4_det, picodet_layout)",
    )
    parser.add_argument(
        "--suite",
        choices=["stats", "default", "both"],
        default="both",
        help="stats: statistics+ranges on random data; default: the default analysis on photos",
    )
    parser.add_argument("--ort-repeats", type=int, default=1, help="runs of each quantize_static (default suite)")
    parser.add_argument(
        "--rss-cap-gb",
        type=float,
        default=8.0,
        help="stop a quantize_static child whose RSS passes this (default suite)",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return
    if args.suite in ("default", "both"):
        default_suite(args)
    if args.suite == "default":
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        builders = {"resnet50 1x3x224x224": resnet50, "ppocrv4_det 1x3x640x640": ppocr_det}
        for label, _, model, path in _saved_models(builders, args.models, folder):
            rng = np.random.default_rng(0)
            data = functools.partial(_random_data, model, rng, folder)
            rss = {
                n: statistics.median(_run_child("rss", path, data(n))["peak_rss_gb"] for _ in range(args.repeats))
                for n in args.rss_samples
            }
            if args.rss_only:
                print(
                    f"{label}: peak RSS (GB, median of {args.repeats}): "
                    + ", ".join(f"{n} samples: {v:.2f}" for n, v in rss.items()),
                    flush=True,
                )
                continue
            runs = [_run_child("ours", path, data(args.samples)) for _ in range(args.repeats)]
            ratio = statistics.median(r["ours_s"] / r["plain_s"] for r in runs)
            ours_s = statistics.median(r["ours_s"] for r in runs)
            plain_s = statistics.median(r["plain_s"] for r in runs)
            floor = statistics.median(r["floor_s"] / r["plain_s"] for r in runs)
            ort_s = ort_rss = None
            wanted = args.ort_entropy_models is None or label.split()[0] in args.ort_entropy_models
            if not args.skip_ort_entropy and wanted:
                ort_run = _run_child("ort_entropy", path, data(args.samples))
                ort_s, ort_rss = ort_run["ort_entropy_s"], ort_run["peak_rss_gb"]
            rows.append((label, plain_s, floor, ours_s, ratio, ort_s, rss, ort_rss))
    if args.rss_only:
        return
    print(f"\n{args.samples} samples, medians of {args.repeats} runs (ORT entropy: one run)")
    print(
        "| model | plain ORT s | activations only / plain | ours s | ours/plain | ORT entropy s | speed-up | "
        "peak RSS ours (GB) | peak RSS ORT entropy |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, plain_s, floor, ours_s, ratio, ort_s, rss, ort_rss in rows:
        speed = f"{ort_s / ours_s:.1f}x" if ort_s else "-"
        rss_text = ", ".join(f"{n}: {v:.2f}" for n, v in rss.items())
        print(
            f"| {label} | {plain_s:.2f} | {floor:.2f} | {ours_s:.2f} | {ratio:.2f} | "
            f"{f'{ort_s:.1f}' if ort_s else '-'} | {speed} | {rss_text} | {f'{ort_rss:.2f}' if ort_rss else '-'} |"
        )


if __name__ == "__main__":
    main()
