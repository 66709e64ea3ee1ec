"""A planted culprit (issue 14, "Must show"): in an otherwise easy CNN one tensor holds a hot pixel that
uint8 Min-Max must cover. The report must put it first in ``sensitivity``, show the accumulated cosine
dropping at it, and the precision curve's first step must promote it and recover the outputs.

The model also holds a decoy whose own uint8 error is worse than the culprit's (the per-tensor table's
worst) and which the outputs hardly feel: a ranking by each tensor's predicted SQNR, the hybrid's ranking
before issue 14, puts the decoy first and fails here.

The base is Min-Max on purpose: KL clips the hot pixel away (and is then the better uint8 configuration,
which the analysis would otherwise pick as the base), so the culprit only shows under Min-Max.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.quant import QuantOptions, analyze, build_report
from app.quant.calibration import ArrayData
from app.quant.model import input_specs
from tests.quant.models import planted_culprit

CULPRIT, DECOY = "spiked", "decoy"


def _error(entry: dict) -> None:
    assert set(entry) == {"sqnr_db", "cosine"}
    assert all(isinstance(v, float) for v in entry.values())


@pytest.fixture(scope="module", params=[{}, {"target": "onnxruntime"}], ids=["default target", "onnxruntime"])
def report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    model = planted_culprit()
    folder = tmp_path_factory.mktemp("culprit")
    np.savez(folder / "x.npz", x=np.random.default_rng(1).standard_normal((4, 3, 128, 128)).astype(np.float32))
    options = QuantOptions(**request.param, hybrid_base="uint8/minmax")
    analysis = analyze(model, ArrayData(folder / "x.npz", input_specs(model)), options)
    return build_report(analysis, histograms=False)


def test_the_culprit_is_first_in_sensitivity_and_not_the_per_tensor_worst(report: dict) -> None:
    ranking = [entry["tensor"] for entry in report["sensitivity"]]
    sqnr = {entry["tensor"]: entry["output_sqnr_db"] for entry in report["sensitivity"]}
    print(f"\n{report['toolkit']['name']}: sensitivity", [(t, round(sqnr[t], 1)) for t in ranking])
    assert ranking[0] == CULPRIT
    assert sqnr[CULPRIT] < 5 and all(sqnr[t] > 30 for t in ranking[1:])  # it alone ruins the outputs
    predicted = {name: t["sqnr_db"]["uint8/minmax"] for name, t in report["tensors"].items()}
    assert min(predicted, key=predicted.get) == DECOY  # the per-tensor table ranks the decoy first
    assert predicted[DECOY] < predicted[CULPRIT] - 2 and sqnr[DECOY] > 50


def test_the_accumulated_cosine_drops_at_the_culprit(report: dict) -> None:
    assert report["error_config"] == "uint8/minmax"
    order = list(report["tensors"])
    accumulated = report["accumulated"]
    before = order[: order.index(CULPRIT)]
    assert before and set(before) <= set(accumulated)
    cosine = {name: accumulated[name]["cosine"] for name in order if name in accumulated}
    print(f"\n{report['toolkit']['name']}: accumulated cosine", {k: round(v, 4) for k, v in cosine.items()})
    assert all(cosine[name] > 0.999 for name in before)
    assert cosine[CULPRIT] < 0.95
    assert 1 - cosine[CULPRIT] > 100 * max(1 - cosine[name] for name in before)
    # born here: the culprit's own layer alone (float inputs) makes the error, as the local column says
    assert report["local"][CULPRIT]["cosine"] < 0.95
    assert all(report["local"][name]["cosine"] > 0.999 for name in before)


def test_the_curves_first_step_promotes_the_culprit_and_recovers_the_output(report: dict) -> None:
    curve = report["recommendation"]["curve"]
    k0, k1 = curve[0], curve[1]
    assert (k0["k"], k1["k"]) == (0, 1) and k0["int16"] == []
    assert CULPRIT in k1["int16"] and DECOY not in k1["int16"]
    (output,) = k1["outputs"]
    print(f"\n{report['toolkit']['name']}: k=0 {k0['outputs'][output]}, k=1 {k1['int16']} {k1['outputs'][output]}")
    assert k0["grade"] == "poor" and k1["grade"] == "good"
    assert k1["outputs"][output]["sqnr_db"] > k0["outputs"][output]["sqnr_db"] + 20
    assert report["recommendation"]["knee"] == 1 and report["recommendation"]["int16"] == k1["int16"]
    assert report["verdict"]["hybrid"]["grade"] == "good" and report["verdict"]["uint8/minmax"]["grade"] == "poor"


def test_the_report_fields_have_the_shapes_the_issue_lists(report: dict) -> None:
    points = set(report["tensors"])
    for field in ("accumulated", "local"):
        assert set(report[field]) == points, field
        for entry in report[field].values():
            _error(entry)
    sensitivity = report["sensitivity"]
    assert {entry["tensor"] for entry in sensitivity} == points
    values = [entry["output_sqnr_db"] for entry in sensitivity]
    assert values == sorted(values)  # worst first
    for entry in sensitivity:
        assert {"tensor", "output_sqnr_db", "cosine", "outputs"} <= set(entry)
        _error(entry["outputs"]["y"])
        assert entry["output_sqnr_db"] == entry["outputs"]["y"]["sqnr_db"]
    culprit = sensitivity[0]
    if report["settings"]["int16"].endswith("(W16A16)"):  # the layer's weights go to 16 bit with it: estimated too
        with_weights = culprit["with_weights"]
        assert with_weights["estimated"] and with_weights["output_sqnr_db"] <= culprit["output_sqnr_db"]
    else:
        assert "with_weights" not in culprit
    scope = report["sensitivity_scope"]
    assert scope["measured"] == scope["points"] == len(points) and scope["pruning"] is None and scope["samples"] == 1
    source = report["error_source"]
    assert set(source) >= {"weights_only", "activations_only"} and source["dominant"] == "activations"
    for kind in ("weights_only", "activations_only"):
        assert set(source[kind]) == {"y"} and isinstance(source[kind]["y"], float)
    rec = report["recommendation"]
    assert [p["k"] for p in rec["curve"]] == sorted({p["k"] for p in rec["curve"]}) and len(rec["curve"]) >= 6
    assert rec["curve"][-1]["k"] == len(points) and set(rec["curve"][-1]["int16"]) == points
    for p in rec["curve"]:
        assert {"k", "int16", "outputs", "grade"} <= set(p) and isinstance(p["int16"], list)
        _error(p["outputs"]["y"])
    assert rec["curve_note"] is None  # this curve does not fall
    assert set(report["verdict"]) == {"uint8/minmax", "uint8/kl", "int16/minmax", "hybrid"}
    for entry in report["verdict"].values():
        assert entry["grade"] in ("good", "marginal", "poor")
        assert set(entry["thresholds"]) == {"good_cosine", "good_sqnr_db", "marginal_cosine"}
        assert set(entry["outputs"]["y"]) == {"sqnr_db", "cosine", "grade"}
