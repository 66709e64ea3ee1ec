"""app.runtime on real files and real models: .npy format versions in both readers (the server's .npz inputs
and the analysis' calibration data), the dim rule of input specs, one random generator for both callers,
and the output comparison's edge cases."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from app.graph import ModelDocument
from app.quant.calibration import ArrayData, RandomData
from app.quant.errors import QuantError
from app.quant.model import input_specs as quant_input_specs
from app.runtime.compare import compare_outputs
from app.runtime.errors import BadArray
from app.runtime.inputs import input_specs
from app.runtime.npy import read_npz
from app.server.services.runs import random_model_inputs
from tests.quant.models import conv_net


def npz_of_version(path: Path, version: tuple[int, int], **arrays: np.ndarray) -> Path:
    """An .npz whose members are written in the given .npy format version (numpy.savez picks the lowest)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, array, version=version)
    return path


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_every_npy_version_reads_in_both_paths(tmp_path: Path, version: tuple[int, int]) -> None:
    x = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    path = npz_of_version(tmp_path / "x.npz", version, x=x)
    with zipfile.ZipFile(path) as archive, archive.open("x.npy") as member:
        assert np.lib.format.read_magic(member) == version  # the file really is of that version
    np.testing.assert_array_equal(read_npz(path, x.size, 1 << 20)["x"], x)  # the server's run inputs
    data = ArrayData(path, quant_input_specs(conv_net()))  # the analysis' calibration data
    assert data.num_samples == 4
    np.testing.assert_array_equal(np.concatenate([b["x"] for b in data.batches()]), x)


def test_an_unknown_npy_version_is_refused_in_both_paths(tmp_path: Path) -> None:
    path = npz_of_version(tmp_path / "x.npz", (1, 0), x=np.zeros((2, 3, 16, 16), np.float32))
    raw = bytearray(path.read_bytes())
    at = raw.index(b"\x93NUMPY")
    raw[at + 6] = 4  # format 4.0 does not exist
    path.write_bytes(bytes(raw))
    with pytest.raises(BadArray, match="unsupported .npy format version"):
        read_npz(path, 10**6, 1 << 20)
    with pytest.raises(QuantError, match=r"x.npz:x.npy is not a valid .npy array: unsupported"):
        ArrayData(path, quant_input_specs(conv_net()))


def _model(*inputs: tuple[str, int, list]) -> ModelDocument:
    nodes = [helper.make_node("Identity", [name], [f"{name}_out"]) for name, _, _ in inputs]
    graph = helper.make_graph(
        nodes,
        "m",
        [helper.make_tensor_value_info(n, t, d) for n, t, d in inputs],
        [helper.make_tensor_value_info(f"{n}_out", t, None) for n, t, _ in inputs],
    )
    return ModelDocument(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_a_dim_value_of_0_is_static_and_minus_1_unknown() -> None:
    doc = _model(("x", TensorProto.FLOAT, [0, 3]), ("y", TensorProto.FLOAT, [-1, "seq"]))
    assert [s.shape for s in input_specs(doc.model)] == [(0, 3), (None, "seq")]
    with pytest.raises(QuantError, match="'x' has a dim of size 0"):
        quant_input_specs(doc.model)


def test_server_and_analysis_draw_the_same_random_inputs() -> None:
    doc = _model(
        ("ids", TensorProto.INT64, [1, 64]), ("x", TensorProto.FLOAT, [1, 8]), ("m", TensorProto.BOOL, [1, 64])
    )
    served = random_model_inputs(doc, {}, 7, 10**6)
    (calibration,) = RandomData(quant_input_specs(doc.model), 1, seed=7).batches()
    assert served.keys() == calibration.keys()
    for name in served:
        np.testing.assert_array_equal(served[name], calibration[name])
    assert set(np.unique(served["ids"])) == {0, 1}  # valid ids, token types and indices of any model


def test_compare_outputs_edge_cases() -> None:
    zeros, ones = np.zeros(3, np.float32), np.ones(3, np.float32)
    report = compare_outputs(
        {"a": zeros, "b": zeros, "c": ones, "d": np.array([1, 2], np.int64)},
        {"a": zeros, "b": ones, "c": -ones, "d": np.array([1, 5], np.int64)},
    )
    got = {o["name"]: (o["max_abs_diff"], o["cosine"], o["equal"]) for o in report["outputs"]}
    assert got["a"] == (0.0, 1.0, True)  # all zero on both sides: equal
    assert got["b"] == (1.0, 0.0, False)  # all zero against something
    assert got["c"] == (2.0, -1.0, False)
    assert got["d"][0] == 3.0 and 0 < got["d"][1] < 1 and report["all_equal"] is False
