"""Fidelity: a model loaded and saved with no edit comes back protobuf-equal, and edits leave no trace.

Users upload models produced by exporters we do not control and feed the result to NPU toolchains
that are picky about every field, so the engine must never rename, reorder or drop anything it was
not asked to touch. The sources are onnx's own backend test models (about 2,000 small models that
cover every operator and many protobuf features), the real fixture models, and one hand-built model
with the rarely used fields (functions, training info, sparse initializers, doc strings).
Edits that must keep the model's function are checked against onnxruntime's outputs.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from app.graph import ModelDocument, WorkbenchError, load_model, save_model

FIXTURES = (
    "ppocr_cls_v2",
    "ppocrv4_det",
    "silero_vad_v6",
    "magika_v3_3",
    "minilm_l6_int8",
    "light_resnet50",
    "logreg_iris",
)
BACKEND_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"

# Inputs whose symbolic dims need particular sizes for the model to run, or whose values matter.
INPUT_SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "ppocr_cls_v2": {"x": (1, 3, 48, 192)},
    "ppocrv4_det": {"x": (1, 3, 64, 64)},
    "silero_vad_v6": {"input": (1, 512), "state": (2, 1, 128)},
    "minilm_l6_int8": {"input_ids": (1, 8), "attention_mask": (1, 8), "token_type_ids": (1, 8)},
}
INPUT_VALUES: dict[str, dict[str, np.ndarray]] = {
    "silero_vad_v6": {"sr": np.array(16000, dtype=np.int64), "state": np.zeros((2, 1, 128), np.float32)},
    "minilm_l6_int8": {"attention_mask": np.ones((1, 8), np.int64), "token_type_ids": np.zeros((1, 8), np.int64)},
}
ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


# -- helpers -----------------------------------------------------------------------------------
def round_trip_failure(source: Path, out_dir: Path) -> str | None:
    """Why load_model + save_model did not give back the source model (None when it did)."""
    try:
        doc = load_model(source)
        written = save_model(doc, out_dir / "saved.onnx")
    except Exception as err:  # every failure is collected, not only WorkbenchError
        return f"{type(err).__name__}: {str(err).strip()[:200]}"
    if onnx.load(written[0]) != onnx.load(source):
        return describe_difference(onnx.load(source), onnx.load(written[0]))
    return None


def describe_difference(expected: onnx.ModelProto, actual: onnx.ModelProto) -> str:
    """The first top-level field (or graph field) that differs, so a failure list stays readable."""
    for desc in onnx.ModelProto.DESCRIPTOR.fields:
        if getattr(expected, desc.name) != getattr(actual, desc.name):
            if desc.name != "graph":
                return f"model.{desc.name} differs"
            for gdesc in onnx.GraphProto.DESCRIPTOR.fields:
                if getattr(expected.graph, gdesc.name) != getattr(actual.graph, gdesc.name):
                    return f"graph.{gdesc.name} differs"
    return "differs outside the known fields (unknown fields?)"


def check_all(sources: list[tuple[str, Path]], out_dir: Path) -> None:
    failures = [f"{name}: {why}" for name, path in sources if (why := round_trip_failure(path, out_dir)) is not None]
    assert not failures, f"{len(failures)} of {len(sources)} models changed in a round trip:\n" + "\n".join(failures)


def backend_node_cases() -> Iterator[tuple[str, onnx.ModelProto]]:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():  # the case generators overflow casts on purpose
        warnings.simplefilter("ignore")
        cases = collect_testcases("")
    for case in cases:
        if case.model is not None:
            yield case.name, case.model


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # unused-initializer warnings of the IR 3 model are noise here
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def make_feeds(name: str, sess: ort.InferenceSession) -> dict[str, np.ndarray]:
    """Inputs from the session's input types: symbolic dims take the sizes known to work, else 1."""
    rng = np.random.default_rng(0)
    feeds: dict[str, np.ndarray] = {}
    for arg in sess.get_inputs():
        if arg.name in INPUT_VALUES.get(name, {}):
            feeds[arg.name] = INPUT_VALUES[name][arg.name]
            continue
        shape = INPUT_SHAPES.get(name, {}).get(arg.name) or tuple(d if isinstance(d, int) else 1 for d in arg.shape)
        dtype = ORT_DTYPES[arg.type]
        if np.issubdtype(dtype, np.floating):
            feeds[arg.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[arg.name] = rng.integers(0, 100, shape).astype(dtype)
    return feeds


def run(name: str, model: onnx.ModelProto) -> dict[str, Any]:
    """The model's outputs by name, on the fixed inputs of the fixture."""
    sess = session(model)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, make_feeds(name, sess)), strict=True))


def assert_same_values(expected: Any, actual: Any, where: str, rtol: float, atol: float) -> None:
    """Compare outputs, including ZipMap's list of dicts."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and expected.keys() == actual.keys(), where
        for key in expected:
            assert_same_values(expected[key], actual[key], f"{where}[{key!r}]", rtol, atol)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_same_values(e, a, f"{where}[{i}]", rtol, atol)
    else:
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=where)


def snapshot(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


@functools.cache
def baseline(path: Path, name: str) -> tuple[bool, dict[str, Any]]:
    """Whether the original passes onnx's checker, and its onnxruntime outputs (computed once)."""
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model)
        valid = True
    except onnx.checker.ValidationError:
        valid = False
    return valid, run(name, model)


def check_runs(doc: ModelDocument, name: str, path: Path, what: str) -> dict[str, Any]:
    """The edited model passes the checker (when the original did) and runs; returns its outputs."""
    valid, _ = baseline(path, name)
    if valid:
        try:
            onnx.checker.check_model(doc.model)
        except onnx.checker.ValidationError as err:
            pytest.fail(f"{name} after {what}: the checker refuses the model: {str(err).splitlines()[0]}")
    try:
        return run(name, doc.model)
    except Exception as err:  # onnxruntime raises its own exception types
        pytest.fail(f"{name} after {what}: onnxruntime cannot run it: {str(err).strip()[:300]}")


# -- choosing edits on a real model ---------------------------------------------------------------
def inner_tensor(doc: ModelDocument, typed: bool = False) -> str:
    """A tensor computed in the middle of the main graph and read there, never a graph output.

    `typed` asks for one whose type onnx's shape inference knows (add_output needs it; onnx has no
    inference for some ai.onnx.ml operators).
    """
    scope = doc.main
    outputs = set(scope.index.output_names())
    known = {vi.name for vi in onnx.shape_inference.infer_shapes(doc.model).graph.value_info} if typed else set()
    nodes = list(doc.model.graph.node)
    for node in nodes[len(nodes) // 2 :] + nodes[: len(nodes) // 2]:
        for name in node.output:
            if name and name not in outputs and scope.index.users(name) and (not typed or name in known):
                return name
    raise AssertionError("the model has no inner tensor")


def attribute_json(attr: AttributeProto) -> Any:
    """The JSON value an edit script would give to set this attribute to what it already is."""
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    return value


PLAIN_ATTRIBUTES = (
    AttributeProto.INT,
    AttributeProto.FLOAT,
    AttributeProto.STRING,
    AttributeProto.INTS,
    AttributeProto.FLOATS,
    AttributeProto.STRINGS,
)


def same_value_attribute_edits(doc: ModelDocument) -> list[dict[str, Any]]:
    """set_attribute of every plain (number/string/list) attribute, bodies included, to its own value."""
    return [
        {"op": "set_attribute", "node": doc.node_path(scope, node), "name": attr.name, "value": attribute_json(attr)}
        for scope, node in doc.walk()
        for attr in node.attribute
        if attr.type in PLAIN_ATTRIBUTES
    ]


def no_op_edits(doc: ModelDocument) -> dict[str, list[dict[str, Any]]]:
    """Edits that change the model without changing what it computes, each a list applied at once."""
    first = doc.model.graph.node[0]
    typed = inner_tensor(doc, typed=True)
    last_output = doc.model.graph.output[-1].name
    return {  # in an order that lets them all apply in one batch
        "set_attribute": same_value_attribute_edits(doc)[:1],
        "rename_node": [{"op": "rename_node", "node": doc.main.node_id(first), "to": "renamed_by_test"}],
        "rename_tensor": [{"op": "rename_tensor", "tensor": inner_tensor(doc), "to": "renamed_tensor_by_test"}],
        "add_output": [{"op": "add_output", "tensor": typed}],
        "add_output+remove_output": [
            {"op": "add_output", "tensor": typed},
            {"op": "remove_output", "name": last_output},
        ],
    }


# -- 1. load + save with no edit -------------------------------------------------------------------
def test_backend_node_models_round_trip(tmp_path: Path) -> None:
    """Every model of onnx's node test cases (one per operator variant, about 1,900)."""
    sources: list[tuple[str, Path]] = []
    for i, (name, model) in enumerate(backend_node_cases()):
        path = tmp_path / f"{i}.onnx"
        onnx.save_model(model, path)
        sources.append((name, path))
    assert len(sources) > 1500
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    check_all(sources, out_dir)


def test_backend_data_models_round_trip(tmp_path: Path) -> None:
    """The models onnx ships as files (light nets, pytorch-converted, pytorch-operator, simple)."""
    paths = sorted(BACKEND_DATA.rglob("*.onnx"))
    assert len(paths) > 100
    check_all([(str(p.relative_to(BACKEND_DATA)), p) for p in paths], tmp_path)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_round_trip(fixture_model: Callable[[str], Path], name: str, tmp_path: Path) -> None:
    assert round_trip_failure(fixture_model(name), tmp_path) is None


def rich_model() -> onnx.ModelProto:
    """A model using the fields real exporters seldom fill but that must survive a round trip."""
    rng = np.random.default_rng(1)
    weight = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "W")
    weight.doc_string = "weight doc"
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "S"),
        numpy_helper.from_array(np.array([1, 6], np.int64), "S_idx"),
        [2, 4],
    )
    label = helper.make_tensor("labels", TensorProto.STRING, [2], [b"a", b"b"])
    then_graph = helper.make_graph(
        [helper.make_node("Identity", ["y"], ["t_out"])],
        "then",
        [],
        [helper.make_tensor_value_info("t_out", TensorProto.FLOAT, [2, 4])],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Neg", ["y"], ["e_out"], doc_string="inner doc")],
        "else",
        [],
        [helper.make_tensor_value_info("e_out", TensorProto.FLOAT, [2, 4])],
    )
    function = helper.make_function(
        "custom.fn",
        "AddTwice",
        ["a", "b"],
        ["c"],
        [helper.make_node("Add", ["a", "b"], ["ab"]), helper.make_node("Add", ["ab", "b"], ["c"])],
        [helper.make_opsetid("", 18)],
        doc_string="a local function",
    )
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"], name="mm", doc_string="node doc"),
        helper.make_node("AddTwice", ["xw", "S"], ["y"], domain="custom.fn", name="fn_call"),
        helper.make_node("ReduceSum", ["y"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["z"], name="branch", then_branch=then_graph, else_branch=else_graph),
        helper.make_node("Identity", ["labels"], ["labels_out"], name="same"),
        helper.make_node("Identity", ["y"], ["y2"], name="same"),
    ]
    graph = helper.make_graph(
        nodes,
        "rich",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, "n"])],
        [
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 4]),
            helper.make_tensor_value_info("labels_out", TensorProto.STRING, [2]),
            helper.make_tensor_value_info("y2", TensorProto.FLOAT, None),
        ],
        [weight, label, numpy_helper.from_array(np.array(0.0, np.float32), "zero")],
        doc_string="graph doc",
        value_info=[helper.make_tensor_value_info("xw", TensorProto.FLOAT, [2, 4])],
        sparse_initializer=[sparse],
    )
    annotation = graph.quantization_annotation.add(tensor_name="xw")
    annotation.quant_parameter_tensor_names.add(key="SCALE_TENSOR", value="W")
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("custom.fn", 1)],
        functions=[function],
        producer_name="fidelity-test",
        producer_version="1.0",
        domain="org.test",
        model_version=7,
        doc_string="model doc",
    )
    model.ir_version = 9
    helper.set_model_props(model, {"author": "tests", "license": "none"})
    algorithm = helper.make_graph(
        [helper.make_node("Identity", ["W"], ["W_next"])],
        "training",
        [],
        [helper.make_tensor_value_info("W_next", TensorProto.FLOAT, [4, 4])],
    )
    model.training_info.add(algorithm=algorithm).update_binding.add(key="W", value="W_next")
    return model


def test_rich_model_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "rich.onnx"
    onnx.save_model(rich_model(), source)
    (tmp_path / "out").mkdir()
    assert round_trip_failure(source, tmp_path / "out") is None


def with_unknown_fields(model: onnx.ModelProto) -> bytes:
    """The model's bytes with a field this onnx does not know (number 99) in ModelProto and GraphProto,
    as a file written by a newer onnx would have them."""

    def varint(value: int) -> bytes:
        out = bytearray()
        while value > 0x7F:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        return bytes(out + bytes([value]))

    unknown = varint(99 << 3) + varint(5)  # field 99, wire type 0 (varint), value 5
    graph = model.graph.SerializeToString() + unknown
    shell = onnx.ModelProto()
    shell.CopyFrom(model)
    shell.ClearField("graph")
    graph_field = onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number
    return shell.SerializeToString() + varint(graph_field << 3 | 2) + varint(len(graph)) + graph + unknown


def test_unknown_fields_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "newer.onnx"
    source.write_bytes(with_unknown_fields(rich_model()))
    assert onnx.load(source) != rich_model()  # the unknown fields are there and count in equality
    (tmp_path / "out").mkdir()
    assert round_trip_failure(source, tmp_path / "out") is None


# -- 2. edits undone leave the model as it was; edited models stay valid and runnable -------------
@pytest.mark.parametrize("name", FIXTURES)
def test_edits_undone_give_original(fixture_model: Callable[[str], Path], name: str, tmp_path: Path) -> None:
    path = fixture_model(name)
    original = onnx.load(path)
    doc = load_model(path)
    edits = no_op_edits(doc)
    _, expected = baseline(path, name)
    for label, batch in edits.items():
        doc.apply(batch)
        outputs = check_runs(doc, name, path, label)
        for key in expected.keys() & outputs.keys():
            assert_same_values(expected[key], outputs[key], f"{name} after {label}: output {key}", 1e-6, 1e-7)
        for _ in batch:
            doc.undo()
        assert doc.model == original, f"{name}: apply + undo of {label} changed the model: " + describe_difference(
            original, doc.model
        )
    everything = [e for batch in edits.values() if len(batch) == 1 for e in batch if e["op"] != "add_output"]
    doc.apply(everything)
    edited = snapshot(doc.model)
    check_runs(doc, name, path, "all edits")
    for _ in everything:
        doc.undo()
    assert doc.model == original, f"{name}: undoing all edits: " + describe_difference(original, doc.model)
    for _ in everything:
        doc.redo()
    assert doc.model == edited, f"{name}: redo of all edits differs from the edits applied"
    for _ in everything:
        doc.undo()
    save_model(doc, tmp_path / "after_undo.onnx")
    assert onnx.load(tmp_path / "after_undo.onnx") == original


@pytest.mark.parametrize("name", FIXTURES)
def test_history_leaves_no_trace(fixture_model: Callable[[str], Path], name: str) -> None:
    """Edits applied after apply/undo/redo/undo cycles give what they give on a freshly loaded model.

    The engine keeps lookup tables up to date change by change; a table left stale by undo or redo
    shows up only in a later edit of the same nodes.
    """
    path = fixture_model(name)
    cycled = load_model(path)
    edits = no_op_edits(cycled)
    for batch in edits.values():
        cycled.apply(batch)
        for _ in batch:
            cycled.undo()
        for _ in batch:
            cycled.redo()
        for _ in batch:
            cycled.undo()
    fresh = load_model(path)
    for label, batch in edits.items():
        for doc in (cycled, fresh):
            doc.apply(batch)
        assert cycled.model == fresh.model, f"{name}: {label} after undo/redo cycles differs"
        for doc in (cycled, fresh):
            for _ in batch:
                doc.undo()


@pytest.mark.parametrize("name", FIXTURES)
def test_same_value_set_attribute_changes_nothing(fixture_model: Callable[[str], Path], name: str) -> None:
    """Setting every plain attribute of every node to its own value leaves the model equal."""
    path = fixture_model(name)
    original = onnx.load(path)
    doc = load_model(path)
    failures = []
    for edit in same_value_attribute_edits(doc):
        try:
            doc.apply([edit])
        except WorkbenchError as err:
            failures.append(f"{edit}: refused: {err.message}")
            continue
        if doc.model != original:
            failures.append(f"{edit}: changed the model")
        doc.undo()
    assert not failures, "\n".join(failures[:20])


# -- 3. edits that must keep the function give the same onnxruntime outputs -----------------------
def function_preserving_edit(doc: ModelDocument, op: str) -> dict[str, Any] | None:
    """The edit of kind `op` for this model, or None where it does not apply."""
    graph = doc.model.graph
    if op == "rename_tensor":
        return {"op": "rename_tensor", "tensor": inner_tensor(doc), "to": "renamed_tensor_by_test"}
    if op in ("cleanup", "fold_constants", "infer_shapes"):
        return {"op": op}
    if op == "extract":
        inputs = [v.name for v in graph.input if v.name not in doc.main.initializers]
        return {"op": "extract", "inputs": inputs, "outputs": [v.name for v in graph.output]}
    if op == "convert_opset":
        current = doc.opset_version("")
        if current is None:
            return None  # ai.onnx.ml only: nothing to convert
        target = 18 if current < 18 else current + 1
        return {"op": "convert_opset", "version": target} if target <= onnx.defs.onnx_opset_version() else None
    raise AssertionError(op)


FUNCTION_PRESERVING = ("rename_tensor", "cleanup", "extract", "convert_opset", "fold_constants", "infer_shapes")


@pytest.mark.parametrize("op", FUNCTION_PRESERVING)
@pytest.mark.parametrize("name", FIXTURES)
def test_edit_keeps_outputs(fixture_model: Callable[[str], Path], name: str, op: str) -> None:
    path = fixture_model(name)
    original = onnx.load(path)
    doc = load_model(path)
    edit = function_preserving_edit(doc, op)
    if edit is None:
        pytest.skip(f"{op} does not apply to {name}")
    _, expected = baseline(path, name)
    doc.apply([edit])
    outputs = check_runs(doc, name, path, op)
    assert outputs.keys() == expected.keys()
    # onnxruntime picks other kernels once shapes are known or ops change version: float noise only
    tolerance = (1e-6, 1e-7) if op in ("rename_tensor", "cleanup", "extract") else (1e-5, 1e-5)
    for key in expected:
        assert_same_values(expected[key], outputs[key], f"{name} after {op}: output {key}", *tolerance)
    doc.undo()
    assert doc.model == original, f"{name}: undo of {op}: " + describe_difference(original, doc.model)
