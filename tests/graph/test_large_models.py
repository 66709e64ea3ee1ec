"""Models whose weights live in external data files, up to past protobuf's 2 GB limit.

Large language and vision models arrive as model.onnx + weight files. The engine must leave the
weights on disk while editing, write them back file to file, never follow a location out of the
model's folder (an upload could name /etc/passwd or ../other_user/model.bin), and stay within a
small fraction of the weights' size in memory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.graph import ModelLoadError, load_model, save_model
from tests.memory import peak_rss_growth

RNG_SEED = 0


# -- a small model with external weights -------------------------------------------------------
def mlp_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    return {
        "W1": rng.standard_normal((64, 256)).astype(np.float32),
        "B1": rng.standard_normal(256).astype(np.float32),
        "W2": rng.standard_normal((256, 16)).astype(np.float32),
    }


def mlp_model(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """x -> MatMul W1 -> Add B1 -> Relu -> MatMul W2 -> y, plus a Constant node holding a tensor."""
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"], name="mm1"),
        helper.make_node("Add", ["h", "B1"], ["hb"], name="add1"),
        helper.make_node("Relu", ["hb"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "W2"], ["m2"], name="mm2"),
        helper.make_node(
            "Constant", [], ["shift"], name="const", value=numpy_helper.from_array(np.full((1, 16), 0.25, np.float32))
        ),
        helper.make_node("Add", ["m2", "shift"], ["y"], name="add2"),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def mlp_reference(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ weights["W1"] + weights["B1"], 0) @ weights["W2"] + np.float32(0.25)


@pytest.fixture
def external_model(tmp_path: Path) -> Path:
    """model.onnx + w.bin in their own folder; every tensor external (the Constant's too)."""
    folder = tmp_path / "src"
    folder.mkdir()
    onnx.save_model(
        mlp_model(mlp_weights()),
        folder / "model.onnx",
        save_as_external_data=True,
        location="w.bin",
        size_threshold=0,
        convert_attribute=True,
    )
    return folder / "model.onnx"


def run_model(path: Path, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def assert_self_contained(written: list[Path], folder: Path) -> None:
    """Only the returned files are in the folder, and every external location is a file among them."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in written)
    model = onnx.load(written[0], load_external_data=False)
    for tensor in model.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            location = next(e.value for e in tensor.external_data if e.key == "location")
            assert not os.path.isabs(location) and ".." not in Path(location).parts, location
            assert (folder / location).resolve().parent == folder.resolve(), location
            assert folder / location in written


def test_external_weights_stay_on_disk(external_model: Path) -> None:
    doc = load_model(external_model)
    assert [t.data_location for t in doc.model.graph.initializer] == [TensorProto.EXTERNAL] * 3
    assert all(not t.raw_data for t in doc.model.graph.initializer)


def test_edit_and_save_external_model(external_model: Path, tmp_path: Path) -> None:
    weights = mlp_weights()
    source_bytes = (external_model.parent / "w.bin").read_bytes()
    doc = load_model(external_model)
    new_bias = np.linspace(-1, 1, 256, dtype=np.float32)
    doc.apply(
        [
            {"op": "rename_node", "node": "mm1", "to": "first_matmul"},
            {"op": "rename_tensor", "tensor": "W2", "to": "W2_renamed"},
            {"op": "set_initializer", "name": "B1", "value": new_bias.tolist()},
        ]
    )
    out = tmp_path / "out"
    out.mkdir()
    written = save_model(doc, out / "edited.onnx")
    assert written == [out / "edited.onnx", out / "edited.onnx.data"]
    assert_self_contained(written, out)
    saved = onnx.load(written[0])
    assert [n.name for n in saved.graph.node][:1] == ["first_matmul"]
    np.testing.assert_array_equal(
        numpy_helper.to_array(next(t for t in saved.graph.initializer if t.name == "B1")), new_bias
    )
    x = np.random.default_rng(1).standard_normal((1, 64)).astype(np.float32)
    expected = mlp_reference({**weights, "B1": new_bias}, x)
    np.testing.assert_allclose(run_model(written[0], x), expected, rtol=1e-5, atol=1e-5)
    assert (external_model.parent / "w.bin").read_bytes() == source_bytes  # the source is never written


def test_undo_restores_external_references(external_model: Path) -> None:
    original = onnx.load(external_model, load_external_data=False)
    doc = load_model(external_model)
    before = onnx.ModelProto()
    before.CopyFrom(doc.model)
    doc.apply(
        [
            {"op": "set_initializer", "name": "W1", "value": np.zeros((64, 256)).tolist()},
            {"op": "rename_tensor", "tensor": "W1", "to": "W1b"},
        ]
    )
    doc.undo()
    doc.undo()
    assert doc.model == before
    assert doc.model.graph.initializer == original.graph.initializer


def test_round_trip_keeps_the_model(external_model: Path, tmp_path: Path) -> None:
    """With weights loaded on both sides, the saved model equals the source (Constant tensor included)."""
    written = save_model(load_model(external_model), tmp_path / "same.onnx")
    assert onnx.load(written[0]) == onnx.load(external_model)


def test_save_inline_from_external(external_model: Path, tmp_path: Path) -> None:
    """external=False asks for one self-contained file: the weights must come inline from the source."""
    out = tmp_path / "out"
    out.mkdir()
    written = save_model(load_model(external_model), out / "inline.onnx", external=False)
    assert written == [out / "inline.onnx"]
    saved = onnx.load(written[0], load_external_data=False)
    assert all(t.data_location != TensorProto.EXTERNAL for t in saved.graph.initializer)
    x = np.ones((1, 64), np.float32)
    np.testing.assert_allclose(run_model(written[0], x), mlp_reference(mlp_weights(), x), rtol=1e-5, atol=1e-5)


def test_save_inline_model_externally(tmp_path: Path) -> None:
    """A model with inline weights saved with external=True: big tensors go to <name>.data."""
    source = tmp_path / "inline.onnx"
    onnx.save_model(mlp_model(mlp_weights()), source)
    out = tmp_path / "out"
    out.mkdir()
    written = save_model(load_model(source), out / "ext.onnx", external=True)
    assert written == [out / "ext.onnx", out / "ext.onnx.data"]
    assert_self_contained(written, out)
    stubs = onnx.load(written[0], load_external_data=False).graph.initializer
    assert {t.name for t in stubs if t.data_location == TensorProto.EXTERNAL} >= {"W1", "W2"}
    assert without_data_location(onnx.load(written[0])) == onnx.load(source)


def without_data_location(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnx's loader marks tensors it read from a file as DEFAULT explicitly; inline ones leave it unset."""
    for tensor in model.graph.initializer:
        if tensor.data_location == TensorProto.DEFAULT:
            tensor.ClearField("data_location")
    return model


# -- unsafe external data --------------------------------------------------------------------------
def set_location(model_path: Path, tensor: str, **entries: str) -> None:
    """Rewrite the external_data entries of one tensor in place (the file keeps its other content)."""
    model = onnx.load(model_path, load_external_data=False)
    target = next(t for t in model.graph.initializer if t.name == tensor)
    info = {e.key: e.value for e in target.external_data} | entries
    del target.external_data[:]
    for key, value in info.items():
        target.external_data.add(key=key, value=value)
    model_path.write_bytes(model.SerializeToString())


def make_absolute(model: Path, outside: Path) -> None:
    shutil.copy(model.parent / "w.bin", outside / "w.bin")
    set_location(model, "W1", location=str(outside / "w.bin"))


def make_parent(model: Path, outside: Path) -> None:
    shutil.copy(model.parent / "w.bin", model.parent.parent / "w.bin")
    set_location(model, "W1", location="../w.bin")


def make_nested_parent(model: Path, outside: Path) -> None:
    (model.parent / "sub").mkdir()
    shutil.copy(model.parent / "w.bin", model.parent.parent / "w.bin")
    set_location(model, "W1", location="sub/../../w.bin")


def make_symlink_file(model: Path, outside: Path) -> None:
    shutil.copy(model.parent / "w.bin", outside / "w.bin")
    (model.parent / "link.bin").symlink_to(outside / "w.bin")
    set_location(model, "W1", location="link.bin")


def make_symlink_folder(model: Path, outside: Path) -> None:
    shutil.copy(model.parent / "w.bin", outside / "w.bin")
    (model.parent / "linked").symlink_to(outside, target_is_directory=True)
    set_location(model, "W1", location="linked/w.bin")


def make_missing(model: Path, outside: Path) -> None:
    set_location(model, "W1", location="nowhere.bin")


def make_past_end(model: Path, outside: Path) -> None:
    size = (model.parent / "w.bin").stat().st_size
    set_location(model, "W2", offset=str(size - 100), length="16384")


def make_constant_outside(model: Path, outside: Path) -> None:
    """The Constant node's tensor (an attribute, not an initializer) pointing out of the folder."""
    shutil.copy(model.parent / "w.bin", model.parent.parent / "w.bin")
    proto = onnx.load(model, load_external_data=False)
    tensor = next(a.t for n in proto.graph.node if n.op_type == "Constant" for a in n.attribute)
    for entry in tensor.external_data:
        if entry.key == "location":
            entry.value = "../w.bin"
    model.write_bytes(proto.SerializeToString())


@pytest.mark.parametrize(
    "corrupt",
    [
        make_absolute,
        make_parent,
        make_nested_parent,
        make_symlink_file,
        make_symlink_folder,
        make_missing,
        make_past_end,
        make_constant_outside,
    ],
    ids=lambda f: f.__name__.removeprefix("make_"),
)
def test_unsafe_external_data_refused(external_model: Path, tmp_path: Path, corrupt) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    corrupt(external_model, outside)
    with pytest.raises(ModelLoadError) as err:
        load_model(external_model)
    assert err.value.code in ("unsafe_external_data", "missing_external_data", "bad_external_data")


# -- over 2 GB -----------------------------------------------------------------------------------
HUGE_TENSORS = 3
HUGE_ROWS, HUGE_COLS = 192_000, 1024  # float32: 750 MiB per tensor, 2.2 GiB in all
CHUNK_ROWS = 16_000


def chunk_value(tensor: int, chunk: int) -> float:
    """The value filling one chunk of one tensor: lets the test check the copy at a few offsets."""
    return float(tensor * 1000 + chunk)


def write_huge_model(folder: Path) -> int:
    """model.onnx + weights.bin with three 750 MiB tensors, written chunk by chunk; returns the bytes."""
    tensor_bytes = HUGE_ROWS * HUGE_COLS * 4
    initializers = []
    with open(folder / "weights.bin", "wb") as data:
        for t in range(HUGE_TENSORS):
            for c in range(HUGE_ROWS // CHUNK_ROWS):
                data.write(np.full((CHUNK_ROWS, HUGE_COLS), chunk_value(t, c), np.float32).tobytes())
            tensor = TensorProto(
                name=f"W{t}",
                data_type=TensorProto.FLOAT,
                dims=[HUGE_ROWS, HUGE_COLS],
                data_location=TensorProto.EXTERNAL,
            )
            for key, value in (
                ("location", "weights.bin"),
                ("offset", str(t * tensor_bytes)),
                ("length", str(tensor_bytes)),
            ):
                tensor.external_data.add(key=key, value=value)
            initializers.append(tensor)
    nodes = [
        helper.make_node("Gather", [f"W{t}", "rows"], [f"y{t}"], name=f"gather{t}", axis=0) for t in range(HUGE_TENSORS)
    ]
    graph = helper.make_graph(
        nodes,
        "huge",
        [helper.make_tensor_value_info("rows", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info(f"y{t}", TensorProto.FLOAT, ["n", HUGE_COLS]) for t in range(HUGE_TENSORS)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    return HUGE_TENSORS * tensor_bytes


@pytest.mark.slow
def test_model_over_2gb(tmp_path: Path) -> None:
    if shutil.disk_usage(tmp_path).free < 8 * 1024**3:
        pytest.skip("needs 8 GB of free disk for a 2.2 GiB model and its saved copy")
    src = tmp_path / "src"
    out = tmp_path / "out"
    src.mkdir()
    out.mkdir()
    try:
        check_huge_round_trip(src, out)
    finally:  # 4.5 GB would otherwise stay in pytest's kept temp folders
        shutil.rmtree(src)
        shutil.rmtree(out)


def check_huge_round_trip(src: Path, out: Path) -> None:
    """Load, edit and save the 2.2 GiB model; memory stays small and the weights arrive intact."""
    weights_bytes = write_huge_model(src)
    assert weights_bytes > 2**31
    with peak_rss_growth() as growth:
        doc = load_model(src / "model.onnx")
        doc.apply(
            [
                {"op": "rename_tensor", "tensor": "W1", "to": "W1_renamed"},
                {"op": "rename_node", "node": "gather2", "to": "last_gather"},
            ]
        )
        written = save_model(doc, out / "huge.onnx")
    assert growth[0] < weights_bytes // 10, f"RSS grew by {growth[0] / 2**20:.0f} MiB while editing 2.2 GiB of weights"
    assert written == [out / "huge.onnx", out / "huge.onnx.data"]
    assert_self_contained(written, out)
    saved = onnx.load(written[0], load_external_data=False)
    assert [t.name for t in saved.graph.initializer] == ["W0", "W1_renamed", "W2"]
    assert saved.graph.node[2].name == "last_gather"
    data = np.memmap(written[1], dtype=np.uint8, mode="r")
    for t, tensor in enumerate(saved.graph.initializer):
        info = {e.key: int(e.value) for e in tensor.external_data if e.key in ("offset", "length")}
        assert info["length"] == HUGE_ROWS * HUGE_COLS * 4
        for chunk in (0, HUGE_ROWS // CHUNK_ROWS - 1):
            start = info["offset"] + chunk * CHUNK_ROWS * HUGE_COLS * 4
            values = data[start : start + 4 * HUGE_COLS].view(np.float32)
            assert np.all(values == chunk_value(t, chunk)), (tensor.name, chunk)
