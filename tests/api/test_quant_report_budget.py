"""The report's size budget: histograms thinned to a fixed number of bins keep the report of a model with
~500 quantization points and wide (heavy-tailed) histograms within a few kB a point and under 5 MB,
while the histogram route still serves each tensor at the analysis' full resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from app.quant import load_analysis
from app.quant.report import REPORT_HISTOGRAM_BINS
from tests.api.models import chain_model

from .conftest import upload
from .test_quant_api import npz, start, wait

#: Bytes a quantization point may add to the report: its ranges, errors, layer and a thinned histogram
#: (a full one is 60-150 kB on such data, so the old report was 50-70 MB here).
BYTES_PER_POINT = 8_000


def test_report_stays_small_and_the_route_serves_full_histograms(
    client: TestClient, data_dir: Path, tmp_path: Path
) -> None:
    model = chain_model(tmp_path / "chain.onnx", 998, width=512)  # Add and Relu in turn: 499 Adds + the input
    x = np.random.default_rng(1).standard_t(2, (8, 512)).astype(np.float32)  # heavy tails: wide histograms
    sid = upload(client, model)
    job = start(client, sid, [("data", ("calib.npz", npz(x=x)))])
    assert wait(client, job["job_id"], timeout=300)["state"] == "succeeded"
    base = f"/api/sessions/{sid}/quant/{job['job_id']}"

    r = client.get(f"{base}/report")
    assert r.status_code == 200
    report = r.json()
    points = len(report["tensors"])
    assert points == 500
    assert len(r.content) <= BYTES_PER_POINT * points and len(r.content) < 5_000_000, len(r.content)
    for name, entry in report["tensors"].items():
        thinned = entry["histogram"]
        assert len(thinned["counts"]) <= REPORT_HISTOGRAM_BINS, name
        assert len(thinned["edges"]) == len(thinned["counts"]) + 1
        assert sum(thinned["counts"]) == entry["count"], name  # thinning merges bins: counts stay exact

    # the route: the analysis' own histogram at full resolution; the report's merges its bins
    analysis = load_analysis(next(data_dir.rglob("analysis.pickle")), model)
    names = list(report["tensors"])
    for name in (names[0], names[points // 2], names[-1]):
        entry = report["tensors"][name]
        full = client.get(f"{base}/histogram/{name}").json()["histogram"]
        assert full == analysis.tensors[name].stats.histogram.to_json()
        assert sum(full["counts"]) == entry["count"] and "thinned_from" not in full
        thinned = entry["histogram"]
        assert thinned["thinned_from"] == len(full["counts"]) > 4 * REPORT_HISTOGRAM_BINS
        edges, counts = np.array(full["edges"]), np.array(full["counts"])
        first = np.searchsorted(edges, thinned["edges"][:-1], side="right") - 1  # full bins under each thinned one
        last = np.searchsorted(edges, thinned["edges"][1:], side="left")
        assert [int(counts[max(a, 0) : b].sum()) for a, b in zip(first, last, strict=True)] == thinned["counts"], name
        for lo, hi in entry["ranges"].values():  # the clip lines fall inside the thinned chart's span
            assert thinned["edges"][0] <= max(lo, entry["min"]) and min(hi, entry["max"]) <= thinned["edges"][-1]
