"""The `onnx-workbench` command: edit, inspect and serve models from a terminal or a script.

Exit codes: 0 on success, 2 with a one-line message on bad input (missing file, not ONNX,
unknown node, invalid edit); `make-static` exits 1 when shapes stay non-static in the written file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .graph import WorkbenchError, load_model, read_script, save_model, shape_report
from .graph.summary import model_summary
from .quant.cli import add_quant_command
from .server.cli import add_server_commands

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
    dims = _pairs(args.fix, "--fix", "DIM=VALUE (e.g. p2o.DynamicDimension.0=1)", _size)
    doc.apply([{"op": "fix_dim", "dim": name, "value": value} for name, value in dims.items()])
    report = shape_report(doc)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    _print_report(report)
    return 0


def _make_static(args: argparse.Namespace) -> int:
    """Exit 0 when the written file declares only static shapes, 1 (with the list) when some stay open."""
    doc = load_model(args.model)
    shapes = _pairs(
        args.shape,
        "--shape",
        "INPUT=SIZExSIZE... (e.g. x=1x3x640x640)",
        lambda text: [_size(part) for part in text.lower().split("x")],
    )
    dims = _pairs(args.dim, "--dim", "DIM=VALUE (e.g. batch=1)", _size)
    doc.apply([{"op": "make_static", "shapes": shapes, "dims": dims}])
    written = save_model(doc, args.output, external=True if args.external_data else None)
    report = shape_report(doc)
    _print_report(report)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0 if report["all_static"] else 1


def _size(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(text)
    return int(text)


def _pairs(items: list[str] | None, option: str, form: str, parse: Callable[[str], Any]) -> dict[str, Any]:
    """NAME=VALUE options as a dict; a malformed one is bad input (exit 2)."""
    found: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.rpartition("=")
        try:
            if not sep or not name:
                raise ValueError(item)
            found[name] = parse(value)
        except ValueError:
            raise WorkbenchError(f"{option} takes {form}, not '{item}'") from None
    return found


def _print_report(report: dict[str, Any]) -> None:
    print(report["summary"])
    for dim, uses in report["dynamic_dims"].items():
        where = ", ".join(f"{u['tensor']}[{u['axis']}]" for u in uses)
        print(f"dynamic dim {dim}: {where}")
    for name, entry in report["tensors"].items():
        if entry["status"] != "static":
            declared = f" (the file declares {entry['declared']})" if "declared" in entry else ""
            print(f"  {entry['status']:8} {name} {entry['shape']}{declared}")
    for node in report["data_dependent"]:
        print(f"data-dependent: {node['node']} ({node['reason']})")
    if report["suggested_cut"]:
        print("suggested cut (extract up to): " + ", ".join(report["suggested_cut"]["outputs"]))


def _info(args: argparse.Namespace) -> int:
    summary = model_summary(load_model(args.model))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"IR {summary['ir_version']}, opsets {summary['opset']}, producer '{summary['producer']}'")
    print(
        f"{summary['nodes']} nodes ({summary['nodes_including_subgraphs']} with subgraphs), "
        f"{summary['initializers']} initializers, {summary['weights_bytes']:,} bytes of weights"
        + (" (external data)" if summary["external_data"] else "")
    )
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

    static = commands.add_parser("make-static", help="fix input shapes and dims, declare every shape, write the model")
    static.add_argument("model", type=Path)
    static.add_argument("--shape", action="append", metavar="INPUT=1x3x640x640", help="an input's shape (repeatable)")
    static.add_argument("--dim", action="append", metavar="DIM=VALUE", help="a named dim's size (repeatable)")
    static.add_argument("-o", "--output", type=Path, required=True)
    static.add_argument("--external-data", action="store_true", help="write weights to OUTPUT.data")
    static.set_defaults(run=_make_static)

    info = commands.add_parser("info", help="summary of a model")
    info.add_argument("model", type=Path)
    info.add_argument("--json", action="store_true")
    info.set_defaults(run=_info)

    add_server_commands(commands)
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
