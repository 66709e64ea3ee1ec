"""Engine benchmark: load, every edit op, undo/redo and save on a 20,000-node model with 1 GB of weights.

The web UI applies one edit per click, so an edit must cost time in proportion to what it touches,
not to the model; this prints how far each op is from that (targets beside the figures), and what
re-serializing and re-checking the whole model per edit would cost instead. Figures are printed,
never asserted: the machine is shared and timings vary.

    python -m bench.edit_latency                          # full size (the model is cached in /tmp)
    python -m bench.edit_latency --nodes 2000 --weights-mb 50
    python -m bench.edit_latency --ops add_output,extract --profile add_output,extract
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import pstats
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.graph import EDIT_OPS, ModelDocument, load_model, save_model
from bench.common import cached_folder, markdown_table, median_p90, mib, ms, peak_rss_bytes, stopwatch

NODES_PER_BLOCK = 5  # MatMul, Add, Relu, Constant, Reshape
TAPS = 20  # intermediate graph outputs, like the several heads of a detector
TARGET_MS = 20.0
# edits that rework (or re-declare) the whole graph: timed 3 times, not 20
WHOLE_GRAPH = {
    "infer_shapes",
    "convert_opset",
    "fold_constants",
    "extract",
    "cleanup",
    "fix_dim",
    "make_static",
    "constants_to_initializers",
}
RSS_TARGET = 1.5  # peak RSS at most this many times the weights' size
GENERATOR_VERSION = 1  # bump when the model changes, so cached copies are rebuilt


@dataclass(frozen=True)
class Shape:
    """How the synthetic model is laid out for given --nodes and --weights-mb."""

    nodes: int
    weights_mb: int

    @property
    def dead(self) -> int:
        """Nodes no output depends on (for cleanup), which also make the node count exact."""
        base = max(1, self.nodes // 200)
        return base + (self.nodes - base) % NODES_PER_BLOCK

    @property
    def blocks(self) -> int:
        return (self.nodes - self.dead) // NODES_PER_BLOCK

    @property
    def hidden(self) -> int:
        return max(8, int(math.sqrt(self.weights_mb * 2**20 / self.blocks / 4)))

    def taps(self) -> list[int]:
        return [(i + 1) * self.blocks // (TAPS + 1) for i in range(TAPS)]


def block_named(i: int) -> bool:
    """Every third block's Relu and Constant have no name, as exporters often leave them."""
    return i % 3 != 2


def build_model(shape: Shape, folder: Path) -> None:
    """model.onnx + weights.bin; weights written tensor by tensor so memory stays at one tensor."""
    h = shape.hidden
    rng = np.random.default_rng(0)
    nodes: list[onnx.NodeProto] = []
    initializers: list[TensorProto] = []
    dead_after = {j * shape.blocks // shape.dead: j for j in range(shape.dead)}
    taps = set(shape.taps())
    with open(folder / "weights.bin", "wb") as data:
        for i in range(shape.blocks):
            weight = (rng.standard_normal((h, h), dtype=np.float32) / np.float32(math.sqrt(h))).tobytes()
            stub = TensorProto(
                name=f"W{i}", data_type=TensorProto.FLOAT, dims=[h, h], data_location=TensorProto.EXTERNAL
            )
            for key, value in (("location", "weights.bin"), ("offset", str(data.tell())), ("length", str(len(weight)))):
                stub.external_data.add(key=key, value=value)
            data.write(weight)
            initializers += [stub, numpy_helper.from_array(rng.standard_normal(h).astype(np.float32) * 0.1, f"B{i}")]
            source = "x" if i == 0 else f"x{i}"
            named = block_named(i)
            nodes += [
                helper.make_node("MatMul", [source, f"W{i}"], [f"mm{i}"], name=f"blk{i}/matmul"),
                helper.make_node("Add", [f"mm{i}", f"B{i}"], [f"add{i}"], name=f"blk{i}/add"),
                helper.make_node("Relu", [f"add{i}"], [f"relu{i}"], name=f"blk{i}/relu" if named else ""),
                helper.make_node(
                    "Constant",
                    [],
                    [f"shape{i}"],
                    name=f"blk{i}/shape" if named else "",
                    value=numpy_helper.from_array(np.array([-1, h], np.int64)),
                ),
                helper.make_node(
                    "Reshape",
                    [f"relu{i}", f"shape{i}"],
                    ["y" if i == shape.blocks - 1 else f"x{i + 1}"],
                    name=f"blk{i}/reshape",
                    allowzero=0,
                ),
            ]
            if i in dead_after:
                nodes.append(helper.make_node("Sigmoid", [f"mm{i}"], [f"dead{dead_after[i]}"]))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", h])]
    outputs += [helper.make_tensor_value_info(f"relu{i}", TensorProto.FLOAT, ["batch", h]) for i in sorted(taps)]
    graph = helper.make_graph(
        nodes, "synthetic", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", h])], outputs, initializers
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edit_latency")
    model.ir_version = 8
    (folder / "model.onnx").write_bytes(model.SerializeToString())


# -- the edits, one per op, on a different place of the model for each repetition k ----------------
@dataclass
class EditPlan:
    """How to make the k-th edit of an op, and edits to apply first (untimed, undone at the end)."""

    make: Callable[[int], dict[str, Any]]
    setup: Callable[[int], list[dict[str, Any]]] = field(default=lambda reps: [])


def edit_plans(doc: ModelDocument, shape: Shape) -> dict[str, EditPlan]:
    h = shape.hidden
    taps = shape.taps()

    def block(k: int, room: int = 1) -> int:
        """Spread over the model; never the first block, and `room` blocks left after it."""
        return 1 + k * 7919 % (shape.blocks - 1 - room)

    def node_id(i: int, kind: str) -> str:
        return (
            f"blk{i}/{kind}"
            if block_named(i) or kind not in ("relu", "shape")
            else doc.main.node_id(doc.main.index.producer[f"{kind}{i}"])
        )

    plans = {
        "delete_node": EditPlan(lambda k: {"op": "delete_node", "node": node_id(block(k), "relu"), "reconnect": True}),
        "rename_node": EditPlan(lambda k: {"op": "rename_node", "node": node_id(block(k), "add"), "to": f"renamed{k}"}),
        "rename_tensor": EditPlan(lambda k: {"op": "rename_tensor", "tensor": f"mm{block(k)}", "to": f"mm_renamed{k}"}),
        "set_node_input": EditPlan(
            lambda k: {
                "op": "set_node_input",
                "node": node_id(block(k), "add"),
                "index": 1,
                "tensor": f"B{block(k) + 1}",
            }
        ),
        "add_node": EditPlan(
            lambda k: {
                "op": "add_node",
                "op_type": "Sigmoid",
                "inputs": [f"add{block(k)}"],
                "outputs": [f"extra{k}"],
                "name": f"extra{k}",
            }
        ),
        "set_attribute": EditPlan(
            lambda k: {"op": "set_attribute", "node": node_id(block(k), "reshape"), "name": "allowzero", "value": 1}
        ),
        "remove_attribute": EditPlan(
            lambda k: {"op": "remove_attribute", "node": node_id(block(k), "reshape"), "name": "allowzero"}
        ),
        "set_initializer": EditPlan(
            lambda k: {"op": "set_initializer", "name": f"B{block(k)}", "value": [float(k)] * h}
        ),
        "add_input": EditPlan(
            lambda k: {"op": "add_input", "name": f"extra_in{k}", "dtype": "float32", "shape": ["batch", h]}
        ),
        "remove_input": EditPlan(
            lambda k: {"op": "remove_input", "name": f"spare_in{k}"},
            setup=lambda reps: [
                {"op": "add_input", "name": f"spare_in{k}", "dtype": "float32", "shape": [1, h]} for k in range(reps)
            ],
        ),
        "add_output": EditPlan(lambda k: {"op": "add_output", "tensor": f"mm{block(k)}"}),
        "remove_output": EditPlan(lambda k: {"op": "remove_output", "name": f"relu{taps[k % len(taps)]}"}),
        "set_shape": EditPlan(lambda k: {"op": "set_shape", "tensor": f"relu{taps[k % len(taps)]}", "shape": [1, h]}),
        "fix_dim": EditPlan(lambda k: {"op": "fix_dim", "dim": "batch", "value": k + 1}),
        "make_static": EditPlan(lambda k: {"op": "make_static", "dims": {"batch": k + 1}}),
        "constants_to_initializers": EditPlan(lambda k: {"op": "constants_to_initializers"}),
        "extract": EditPlan(
            lambda k: {"op": "extract", "inputs": [f"x{block(k, 11)}"], "outputs": [f"x{block(k, 11) + 10}"]}
        ),
        "fold_constants": EditPlan(lambda k: {"op": "fold_constants"}),
        "cleanup": EditPlan(lambda k: {"op": "cleanup"}),
        "infer_shapes": EditPlan(lambda k: {"op": "infer_shapes"}),
        "convert_opset": EditPlan(lambda k: {"op": "convert_opset", "version": 18}),
    }
    missing = set(EDIT_OPS) - set(plans)
    if missing:
        raise SystemExit(f"the benchmark has no edit for: {', '.join(sorted(missing))}")
    return plans


@dataclass
class Timings:
    apply: list[float] = field(default_factory=list)
    undo: list[float] = field(default_factory=list)
    redo: list[float] = field(default_factory=list)
    error: str = ""


def measure(doc: ModelDocument, plan: EditPlan, reps: int, profiler: cProfile.Profile | None) -> Timings:
    """apply, undo, redo, undo of `reps` edits; only the first three are timed."""
    timings = Timings()
    setup = plan.setup(reps)
    if setup:
        doc.apply(setup)
    try:
        for k in range(reps):
            edit = plan.make(k)
            if profiler is not None:
                profiler.enable()
            with stopwatch() as t:
                doc.apply([edit])
            with stopwatch() as u:
                doc.undo()
            with stopwatch() as r:
                doc.redo()
            if profiler is not None:
                profiler.disable()
            doc.undo()
            timings.apply.append(t[0])
            timings.undo.append(u[0])
            timings.redo.append(r[0])
    except Exception as err:  # report the op as failed and go on with the others
        timings.error = f"{type(err).__name__}: {str(err)[:120]}"
    for _ in setup:
        doc.undo()
    return timings


def baseline(model_path: Path, work: Path) -> dict[str, float]:
    """What an editor that re-serializes and re-checks the whole model on every edit would pay."""
    figures: dict[str, float] = {}
    with stopwatch() as t:
        model = onnx.load(model_path)
    figures["onnx.load (with weights)"] = t[0]
    with stopwatch() as t:
        onnx.checker.check_model(model)
    figures["onnx.checker.check_model"] = t[0]
    with stopwatch() as t:
        onnx.save_model(model, work / "baseline.onnx", save_as_external_data=True, location="baseline.data")
    figures["onnx.save_model (external data)"] = t[0]
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--weights-mb", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=20, help="edits per op (whole-graph ops: --whole-repeats)")
    parser.add_argument("--whole-repeats", type=int, default=3)
    parser.add_argument("--ops", default="", help="comma-separated ops to time (default: all of EDIT_OPS)")
    parser.add_argument("--profile", default="", help="comma-separated ops to profile with cProfile")
    parser.add_argument("--no-baseline", action="store_true", help="skip loading the whole model with onnx")
    args = parser.parse_args(argv)
    shape = Shape(args.nodes, args.weights_mb)
    profiled = {op for op in args.profile.split(",") if op}
    chosen = {op for op in args.ops.split(",") if op} or set(EDIT_OPS)
    unknown = (chosen | profiled) - set(EDIT_OPS)
    if unknown:
        parser.error(f"unknown ops: {', '.join(sorted(unknown))}")

    with stopwatch() as t:
        folder = cached_folder(
            "edit_latency",
            lambda f: build_model(shape, f),
            nodes=shape.nodes,
            weights=shape.weights_mb,
            v=GENERATOR_VERSION,
        )
    model_path = folder / "model.onnx"
    weights_bytes = (folder / "weights.bin").stat().st_size
    print(
        f"model: {model_path} ({shape.nodes} nodes in {shape.blocks} blocks, hidden {shape.hidden}, "
        f"weights {mib(weights_bytes)} external, ready in {t[0]:.1f} s)\n"
    )

    rss_before_load = peak_rss_bytes()
    with stopwatch() as load_time:
        doc = load_model(model_path)
    with stopwatch() as index_time:
        _ = doc.main.index  # the index is built on first use; count it with the load
    snapshot = onnx.ModelProto()
    snapshot.CopyFrom(doc.model)

    rows: list[list[str]] = []
    undo_all: list[float] = []
    profiles: dict[str, str] = {}
    for op, plan in edit_plans(doc, shape).items():
        if op not in chosen:
            continue
        reps = args.whole_repeats if op in WHOLE_GRAPH else args.repeats
        profiler = cProfile.Profile() if op in profiled else None
        timings = measure(doc, plan, reps, profiler)
        if profiler is not None:
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
            profiles[op] = text.getvalue()
        if timings.error:
            rows.append([op, "0", "failed", "", "", "", "", timings.error])
            continue
        median, p90 = median_p90(timings.apply)
        undo_median, _ = median_p90(timings.undo)
        redo_median, _ = median_p90(timings.redo)
        if op not in WHOLE_GRAPH:
            undo_all += timings.undo
        target = "" if op in WHOLE_GRAPH else f"< {TARGET_MS:.0f}"
        verdict = (
            ""
            if op in WHOLE_GRAPH
            else ("ok" if median * 1000 < TARGET_MS and undo_median * 1000 < TARGET_MS else "MISSED")
        )
        rows.append(
            [op, str(len(timings.apply)), ms(median), ms(p90), ms(undo_median), ms(redo_median), target, verdict]
        )
    unchanged = doc.model == snapshot

    out = Path(tempfile.mkdtemp(prefix="edit_latency_"))
    try:
        with stopwatch() as save_time:
            save_model(doc, out / "saved.onnx")
        engine_peak = peak_rss_bytes()
        base = {} if args.no_baseline else baseline(model_path, out)
        base_peak = peak_rss_bytes()
    finally:
        shutil.rmtree(out)

    print(
        markdown_table(
            ["edit", "n", "median ms", "p90 ms", "undo median ms", "redo median ms", "target ms", "verdict"], rows
        )
    )
    undo_median = median_p90(undo_all)[0] if undo_all else float("nan")
    summary = [
        ["load_model (index included)", f"{ms(load_time[0] + index_time[0])} ms", ""],
        ["undo, median over the non-whole-graph edits", f"{ms(undo_median)} ms", f"< {TARGET_MS:.0f} ms"],
        ["save_model (external data)", f"{ms(save_time[0])} ms", ""],
        ["weights", mib(weights_bytes), ""],
        ["peak RSS before load (imports, generation)", mib(rss_before_load), ""],
        [
            "peak RSS after edits and save",
            f"{mib(engine_peak)} ({engine_peak / weights_bytes:.2f}x weights)",
            f"< {RSS_TARGET}x weights",
        ],
        ["model equal to the loaded one after all undos", "yes" if unchanged else "NO", "yes"],
    ]
    if base:
        total = sum(base.values())
        cheap = [float(r[2]) / 1000 for r in rows if r[0] not in WHOLE_GRAPH and r[2] != "failed"]
        typical = median_p90(cheap)[0] if cheap else float("nan")
        summary += [[f"baseline: {name}", f"{ms(value)} ms", ""] for name, value in base.items()]
        summary += [
            ["baseline: load + check + save", f"{ms(total)} ms", ""],
            ["baseline / median of the per-op medians (non-whole-graph)", f"{total / typical:.0f}x", ""],
            ["peak RSS after the baseline", mib(base_peak), ""],
        ]
    print()
    print(markdown_table(["figure", "value", "target"], summary))
    for op, text in profiles.items():
        print(f"\n## cProfile of {op} (apply + undo + redo of each repetition)\n\n{text}")


if __name__ == "__main__":
    main()
