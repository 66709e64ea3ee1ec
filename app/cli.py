"""The `onnx-workbench` command: edit, inspect and serve models from a terminal or a script.

Exit codes: 0 on success, 2 with a one-line message on bad input (missing file, not ONNX,
unknown node, invalid edit).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .graph import WorkbenchError, load_model, read_script, save_model, shape_report
from .graph.summary import model_summary
from .quant.cli import add_quant_command
from .server.cli import add_serve_command

Command = Callable[[argparse.Namespace], int]


def _apply(args: argparse.Namespace) -> int:
    doc = load_model(args.model)
    edits = read_script(args.edits)
    doc.apply(edits)
    written = save_model(doc, args.output, external=True if args.external_data else None)
    print(f"applied {len(edits)} edit(s); wrote {', '.join(str(p) for p in written)}")
    return 0


def _shapes(args: argparse.Namespace) -> int:
    doc = load_model(args.model)
    fixes = []
    for item in args.fix or []:
        name, sep, value = item.rpartition("=")
        if not sep or not name or not value.isdigit():
            raise WorkbenchError(f"--fix takes DIM=VALUE (e.g. p2o.DynamicDimension.0=1), not '{item}'")
        fixes.append({"op": "fix_dim", "dim": name, "value": int(value)})
    doc.apply(fixes)
    report = shape_report(doc)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(report["summary"])
    for dim, uses in report["dynamic_dims"].items():
        where = ", ".join(f"{u['tensor']}[{u['axis']}]" for u in uses)
        print(f"dynamic dim {dim}: {where}")
    for name, entry in report["tensors"].items():
        if entry["status"] != "static":
            print(f"  {entry['status']:8} {name} {entry['shape']}")
    for node in report["data_dependent"]:
        print(f"data-dependent: {node['node']} ({node['reason']})")
    if report["suggested_cut"]:
        print("suggested cut (extract up to): " + ", ".join(report["suggested_cut"]["outputs"]))
    return 0


def _info(args: argparse.Namespace) -> int:
    summary = model_summary(load_model(args.model))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"IR {summary['ir_version']}, opsets {summary['opset']}, producer '{summary['producer']}'")
    print(f"{summary['nodes']} nodes ({summary['nodes_including_subgraphs']} with subgraphs), "
          f"{summary['initializers']} initializers, {summary['weights_bytes']:,} bytes of weights"
          + (" (external data)" if summary["external_data"] else ""))
    for kind in ("inputs", "outputs"):
        for v in summary[kind]:
            print(f"{kind[:-1]:6} {v['name']}: {v['dtype']} {v['shape']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onnx-workbench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    apply = commands.add_parser("apply", help="apply an edit script to a model")
    apply.add_argument("model", type=Path)
    apply.add_argument("edits", type=Path, help="edit script (JSON, see docs/edit-script.md)")
    apply.add_argument("-o", "--output", type=Path, required=True)
    apply.add_argument("--external-data", action="store_true", help="write weights to OUTPUT.data")
    apply.set_defaults(run=_apply)

    shapes = commands.add_parser("shapes", help="static-shape report")
    shapes.add_argument("model", type=Path)
    shapes.add_argument("--fix", action="append", metavar="DIM=VALUE", help="fix a named dim first (repeatable)")
    shapes.add_argument("--json", action="store_true")
    shapes.set_defaults(run=_shapes)

    info = commands.add_parser("info", help="summary of a model")
    info.add_argument("model", type=Path)
    info.add_argument("--json", action="store_true")
    info.set_defaults(run=_info)

    add_serve_command(commands)
    add_quant_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except WorkbenchError as err:
        print(f"onnx-workbench: {err.message}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"onnx-workbench: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
