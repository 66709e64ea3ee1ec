"""Toolkit profiles: the published arithmetic of Acuity's and RKNN's quantizers."""

from __future__ import annotations

import numpy as np
import pytest

from app.quant import QuantOptions, analyze, build_report, load_analysis, quant_table
from app.quant.calibration import RandomData
from app.quant.model import input_specs
from app.quant.quantizers import DFP8, DFP16, INT8_ASYMMETRIC, UINT8, bias_scale
from app.quant.toolkits import TOOLKITS, toolkit
from tests.quant.models import conv_net


def test_acuity_asymmetric_affine_u8_matches_the_demo_file() -> None:
    acuity = toolkit("acuity").tier("uint8")
    assert acuity.name == "asymmetric_affine-u8" and acuity.activation is UINT8
    scale, zero_point = UINT8.params(-1.0, 0.9765625)
    assert float(scale) == pytest.approx(0.007751225493848324, rel=1e-6) and zero_point == 129
    scale, zero_point = UINT8.params(0.0, 6.0)
    assert float(scale) == pytest.approx(6 / 255, rel=1e-6) and zero_point == 0


def test_acuity_dynamic_fixed_point_fraction_lengths() -> None:
    high = toolkit("acuity").tier("int16")
    assert high.name == "dynamic_fixed_point-i16" and high.activation is DFP16 and high.weight is DFP16
    assert DFP16.fraction_length(-23.27, 19.82) == 10
    assert DFP16.fraction_length(0.0, 6.0) == 12
    assert DFP16.fraction_length(-0.73, 0.999) == 15  # weights with |w| < 1
    assert DFP8.fraction_length(0.0, 6.0) == 4
    scale, zero_point = DFP16.params(-23.27, 19.82)
    assert float(scale) == 2.0**-10 and zero_point == 0
    # A power-of-two grid clips nothing inside the observed range and rounds to the nearest step.
    x = np.array([-23.27, 19.82, 0.3, 1 / 3], dtype=np.float32)
    y = DFP16.fake_quantize(x, float(scale), 0)
    assert np.abs(x - y).max() <= 2.0**-11
    np.testing.assert_array_equal(y * 2**10, np.rint(x * 2**10))
    scales, _ = DFP16.params_of(np.array([-23.27, 0.0, -0.5]), np.array([19.82, 6.0, 0.5]))
    np.testing.assert_array_equal(scales, np.float32([2.0**-10, 2.0**-12, 2.0**-16]))


def test_dfp_bias_fraction_length_is_input_plus_weight() -> None:
    fl_in, fl_w = DFP16.fraction_length(0.0, 6.0), DFP16.fraction_length(-0.73, 0.9)
    scale = bias_scale(DFP16.params(0.0, 6.0)[0], DFP16.params(-0.73, 0.9)[0])
    assert -np.log2(scale) == fl_in + fl_w == 27


def test_rknn_w8a8_is_asymmetric_int8_with_symmetric_per_channel_weights() -> None:
    rknn = toolkit("rknn")
    low, high = rknn.tier("uint8"), rknn.tier("int16")
    assert low.name == "w8a8" and low.activation is INT8_ASYMMETRIC and low.per_channel
    assert low.weight.symmetric and low.weight.bits == 8
    assert high.name == "w16a16i" and high.activation.bits == 16 and high.weight.bits == 16
    scale, zero_point = INT8_ASYMMETRIC.params(-1.0, 0.9765625)
    assert float(scale) == pytest.approx(1.9765625 / 255, rel=1e-6) and zero_point == 1  # rint(-128 + 129.01)


def test_algorithm_names_map_onto_ours() -> None:
    acuity = toolkit("acuity").to_json()
    assert acuity["algorithms"]["kl_divergence"] == {"ours": "kl"} and acuity["kl_bins"] == 2**11
    assert acuity["algorithms"]["normal"] == {"ours": "minmax"} and "note" in acuity["algorithms"]["moving_average"]
    assert toolkit("rknn").to_json()["algorithms"]["mmse"] == {"ours": "mse"}
    assert toolkit("onnxruntime").tier("int16").weight is UINT8  # today's A16W8
    assert toolkit("onnxruntime", int16_weights=True).tier("int16").weight.bits == 16
    assert set(TOOLKITS) == {"acuity", "rknn", "onnxruntime"}


def test_table_shows_fl_for_dynamic_fixed_point() -> None:
    model = conv_net()
    analysis = analyze(model, RandomData(input_specs(model), 2), QuantOptions(target="acuity", end_to_end=False))
    table = quant_table(analysis, "int16/minmax")["tensors"]
    assert table and all("fl" in e and "zero_point" not in e for e in table.values())
    entry = table["x"]
    assert entry["scale"] == 2.0 ** -entry["fl"]
    assert entry["fl"] == DFP16.fraction_length(*entry["range"])
    assert all(isinstance(e["fl"], int) for name, e in table.items() if name.startswith("w"))
    low = quant_table(analysis, "uint8/minmax")["tensors"]
    assert all("zero_point" in e and "fl" not in e for e in low.values())
    assert build_report(analysis)["toolkit"]["precisions"]["int16"]["name"] == "dynamic_fixed_point-i16"
    for t in analysis.tensors.values():  # the prediction is the toolkit's arithmetic on the data
        sampled, predicted = t.sampled_sqnr_db["int16/minmax"], t.sqnr_db["int16/minmax"]
        assert predicted is None or abs(sampled - predicted) < 0.5


def test_an_analysis_saved_before_profiles_loads_as_onnxruntime(tmp_path) -> None:
    model = conv_net()
    analysis = analyze(model, RandomData(input_specs(model), 1), QuantOptions(target="onnxruntime", end_to_end=False))
    object.__delattr__(analysis.options, "target")  # as pickled by the version without toolkit profiles
    analysis.save(tmp_path / "a.pickle")
    loaded = load_analysis(tmp_path / "a.pickle", model)
    assert loaded.toolkit.name == "onnxruntime" and loaded.folded_model is None
    assert quant_table(loaded, "int16/minmax")["tensors"]["c2"]["quantizer"] == "int16"
