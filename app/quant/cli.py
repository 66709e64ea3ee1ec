"""``quant`` subcommand: analyse a model, write the report, optionally export QDQ and the table.

``app/cli.py`` registers it with ``add_quant_command(subparsers)``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from app.quant.analysis import CONFIGS, HYBRID, QuantAnalysis, QuantOptions, analyze, model_inputs
from app.quant.calibration import ImagePreprocess, open_calibration_data
from app.quant.errors import QuantCancelled, QuantError
from app.quant.export import acuity_quantize, rknn_cfg
from app.quant.model import InputSpec
from app.quant.report import REPORT_HISTOGRAM_BINS, build_report, quant_table, write_json
from app.quant.samples import CalibrationData
from app.quant.toolkits import DEFAULT_TOOLKIT, TOOLKITS
from app.quant.verdict import Thresholds


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from exc


def _shape(text: str) -> tuple[str, tuple[int, ...]]:
    name, sep, dims = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, tuple(int(d) for d in dims.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected NAME=1x3x224x224, got {text!r}") from exc


def add_quant_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``quant MODEL --data ... --report ...`` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "quant",
        help="quantization analysis: ranges, uint8/int16 error, hybrid, QDQ export",
        description="Analyse how a model quantizes in the target toolkit's arithmetic and "
        "layers (Acuity, RKNN or onnxruntime; 8-bit Min-Max / KL / percentile / "
        "MSE, int16), recommend int16 layers and export a QDQ model and the "
        "toolkit's quantization file.",
    )
    _add_input_arguments(p)
    _add_output_arguments(p)
    _add_analysis_arguments(p)
    _add_report_image_and_run_arguments(p)
    p.set_defaults(run=run_quant)
    return p


def _add_input_arguments(p: argparse.ArgumentParser) -> None:
    """The model and its calibration and validation data."""
    p.add_argument("model", type=Path, help="float ONNX model")
    p.add_argument(
        "--data",
        nargs="+",
        metavar="PATH",
        help=".npz keyed by input name (samples on the first axis), .npy, image files, folders or a zip",
    )
    p.add_argument("--random", type=int, metavar="N", help="use N random batches instead (report says synthetic)")
    p.add_argument("--validation", nargs="+", metavar="PATH", help="separate data for the end-to-end runs")


def _add_output_arguments(p: argparse.ArgumentParser) -> None:
    """The report, and what to export of which configuration."""
    p.add_argument("--report", type=Path, required=True, help="where to write the JSON report")
    p.add_argument("--export-qdq", type=Path, metavar="OUT.onnx", help="write the QDQ model")
    p.add_argument("--export-config", default=HYBRID, choices=[*CONFIGS, HYBRID], help="configuration to export")
    p.add_argument(
        "--curve-point",
        type=int,
        metavar="K",
        help="export (and tabulate) the precision curve's point K "
        "instead of --export-config: its int16 points over the hybrid's base",
    )
    p.add_argument("--table", type=Path, metavar="TABLE.json", help="write the quantization table")
    p.add_argument(
        "--export-acuity",
        type=Path,
        metavar="FILE.quantize",
        help="write Acuity's .quantize of the configuration (needs --target acuity)",
    )
    p.add_argument(
        "--export-rknn",
        type=Path,
        metavar="FILE.cfg",
        help="write RKNN's .quantization.cfg of the configuration (needs --target rknn)",
    )


def _add_analysis_arguments(p: argparse.ArgumentParser) -> None:
    """Input shapes, the range search, the hybrid's target, the verdict's thresholds and the toolkit."""
    p.add_argument(
        "--shape",
        type=_shape,
        action="append",
        default=[],
        metavar="NAME=1x3xHxW",
        help="shape for an input with dynamic dims (random data, images)",
    )
    p.add_argument("--percentile", type=float, default=99.99)
    p.add_argument("--kl-method", choices=["tensorrt", "onnxruntime"], default="tensorrt")
    p.add_argument("--target-margin-db", type=float, default=3.0, help="hybrid target: within this of all-int16")
    p.add_argument("--target-sqnr-db", type=float, help="hybrid target as an absolute output SQNR instead")
    p.add_argument(
        "--good-cosine",
        type=float,
        default=0.99,
        help="verdict: good with at least this output cosine and --good-sqnr-db (default: %(default)s)",
    )
    p.add_argument(
        "--good-sqnr-db",
        type=float,
        default=20.0,
        help="verdict: good with at least this output SQNR (default: %(default)s)",
    )
    p.add_argument(
        "--marginal-cosine",
        type=float,
        default=0.95,
        help="verdict: marginal from this output cosine, poor below (default: %(default)s)",
    )
    p.add_argument(
        "--target",
        choices=list(TOOLKITS),
        default=DEFAULT_TOOLKIT,
        help="toolkit to simulate: its quantizers, int16 and fused layers (default: %(default)s)",
    )
    p.add_argument("--per-channel", action="store_true", help="onnxruntime target: per-channel weight scales")
    p.add_argument(
        "--int16-weights",
        action="store_true",
        help="onnxruntime target: int16 layers get int16 weights too (W16A16, as Acuity/RKNN int16 "
        "layers always do); default A16W8",
    )
    p.add_argument("--no-end-to-end", action="store_true", help="skip QDQ runs and the hybrid search")


def _add_report_image_and_run_arguments(p: argparse.ArgumentParser) -> None:
    """Histograms in the report, image preprocessing, the samples of the measured runs, seed and progress."""
    p.add_argument("--no-histograms", action="store_true", help="leave histograms out of the report")
    p.add_argument(
        "--full-histograms",
        action="store_true",
        help="histograms at full resolution (thousands of "
        f"bins a tensor, tens of MB on a large model); default: at most {REPORT_HISTOGRAM_BINS} bins",
    )
    p.add_argument("--mean", type=_floats, help="images: per-channel mean, e.g. 123.7,116.3,103.5")
    p.add_argument("--scale", type=_floats, help="images: multiplier after subtracting the mean")
    p.add_argument("--std", type=_floats, help="images: divisor after subtracting the mean")
    p.add_argument("--bgr", action="store_true", help="images: feed channels as BGR")
    p.add_argument("--layout", choices=["nchw", "nhwc"], help="images: layout (default: from the input shape)")
    p.add_argument(
        "--search-samples",
        type=int,
        default=4,
        help="samples of the precision curve and the weights-only / activations-only runs (default: %(default)s)",
    )
    p.add_argument(
        "--sensitivity-samples",
        type=int,
        default=1,
        help="samples of the error map and the sensitivity ranking, one run per point each (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


class _Bar:
    """One-line progress bar on a terminal, silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, done: int, total: int, phase: str) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        width = 30
        filled = int(width * done / total) if total else width
        sys.stderr.write(f"\r{phase:<12} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _print_decision(report: dict) -> None:
    """The verdicts, where the error comes from, the worst points and the curve, on the terminal."""
    for label, judged in report["verdict"].items():
        worst = min(judged["outputs"].values(), key=lambda o: o["cosine"] if o["cosine"] is not None else -2)
        print(
            f"{label:14} {judged['grade']:8} worst output: cosine {_num(worst['cosine'], 4)}, "
            f"SQNR {_num(worst['sqnr_db'], 1)} dB"
        )
    source = report.get("error_source")
    if source:
        worst = {
            kind: min((v for v in source[kind].values() if v is not None), default=None)
            for kind in ("weights_only", "activations_only")
        }
        print(
            f"error source ({report['error_config']}): weights only {_num(worst['weights_only'], 1)} dB, "
            f"activations only {_num(worst['activations_only'], 1)} dB; {source['dominant']} dominate"
        )
    for rank, entry in enumerate(report.get("sensitivity", [])[:5], start=1):
        print(f"sensitivity #{rank}: {entry['tensor']} alone in 8 bit: output {_num(entry['output_sqnr_db'], 1)} dB")
    rec = report.get("recommendation")
    if rec:
        for index, point in enumerate(rec["curve"]):
            worst = min((o["sqnr_db"] for o in point["outputs"].values() if o["sqnr_db"] is not None), default=None)
            mark = "  <- knee (recommended)" if index == rec["knee"] else ""
            print(
                f"curve k={point['k']:<5} int16 {len(point['int16']):>5}  {_num(worst, 1):>6} dB  "
                f"{point['grade']}{mark}"
            )
        if rec["curve_note"]:
            print(f"note: {rec['curve_note']}")


def run_quant(args: argparse.Namespace, cancel: threading.Event | None = None) -> int:
    """Run the command; 0 on success, 2 with a one-line message on bad input."""
    bar = _Bar(not args.quiet)
    try:
        options = _options(args)
        _check_exports(args)
        model, specs = model_inputs(args.model)
        data, validation = _open_data(args, specs)
        analysis = analyze(model, data, options, validation, bar, cancel)
        bar.close()
        report = build_report(
            analysis,
            histograms=not args.no_histograms,
            histogram_bins=None if args.full_histograms else REPORT_HISTOGRAM_BINS,
        )
        write_json(report, args.report)
        _print_decision(report)
        _write_exports(args, analysis)
    except QuantCancelled as exc:
        bar.close()
        print(f"quant: {exc}", file=sys.stderr)
        return 130
    except (QuantError, OSError) as exc:
        bar.close()
        print(f"quant: {exc}", file=sys.stderr)
        return 2
    return 0


def _options(args: argparse.Namespace) -> QuantOptions:
    return QuantOptions(
        target=args.target,
        percentile=args.percentile,
        kl_method=args.kl_method,
        target_margin_db=args.target_margin_db,
        target_sqnr_db=args.target_sqnr_db,
        per_channel_weights=args.per_channel,
        int16_weights=args.int16_weights,
        end_to_end=not args.no_end_to_end,
        search_samples=args.search_samples,
        sensitivity_samples=args.sensitivity_samples,
        seed=args.seed,
        thresholds=Thresholds(args.good_cosine, args.good_sqnr_db, args.marginal_cosine),
    )


def _check_exports(args: argparse.Namespace) -> None:
    """Refuse exports that cannot be made, before the analysis runs rather than after."""
    exports = args.export_qdq or args.export_acuity or args.export_rknn
    if exports and args.no_end_to_end and (args.export_config == HYBRID or args.curve_point is not None):
        raise QuantError(
            "exporting the hybrid needs the end-to-end phase; drop --no-end-to-end or pick --export-config"
        )
    for flag, path, toolkit in (
        ("--export-acuity", args.export_acuity, "acuity"),
        ("--export-rknn", args.export_rknn, "rknn"),
    ):
        if path and args.target != toolkit:
            raise QuantError(f"{flag} writes {toolkit}'s file: run with --target {toolkit}")


def _open_data(args: argparse.Namespace, specs: list[InputSpec]) -> tuple[CalibrationData, CalibrationData | None]:
    """The calibration data and the separate validation data, if any."""
    shapes = dict(args.shape)
    preprocess = ImagePreprocess(
        mean=args.mean or (0.0,),
        scale=args.scale,
        std=args.std,
        channel_order="bgr" if args.bgr else "rgb",
        layout=args.layout,
    )
    data = open_calibration_data(specs, args.data, args.random, preprocess, shapes, args.seed)
    validation = open_calibration_data(specs, args.validation, None, preprocess, shapes) if args.validation else None
    return data, validation


def _write_exports(args: argparse.Namespace, analysis: QuantAnalysis) -> None:
    """The table, QDQ model and toolkit files asked for, of the chosen configuration or curve point."""
    label, grid = args.export_config, None
    if args.curve_point is not None:
        label, grid = f"curve-k{args.curve_point}", analysis.curve_precision(args.curve_point)
    if args.table:
        write_json(quant_table(analysis, label, grid), args.table)
    if args.export_qdq:
        analysis.export_qdq(args.export_qdq, label, grid)
    if args.export_acuity:
        args.export_acuity.write_text(acuity_quantize(analysis, label, grid))
    if args.export_rknn:
        args.export_rknn.write_text(rknn_cfg(analysis, label, grid))


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
