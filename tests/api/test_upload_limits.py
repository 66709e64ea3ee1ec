"""What one upload may take on disk once unpacked: bytes and files in all, and bytes per byte sent.

The limits are lowered through Settings so that each bomb stays small; the default policy is checked
on DiskBudget with the sizes of the attack that walked around the old per-member check.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.server.errors import ServiceError as ApiError
from app.server.settings import Settings
from app.server.uploads import DiskBudget

from .conftest import error_of, make_client

MIB = 1 << 20
ZEROS = bytes(MIB)


def write_zip(path: Path, model: Path, pads: Iterable[tuple[str, int]], packed: dict[str, bytes] | None = None) -> Path:
    """A deflated zip of `model` plus members of zeros (name, size), written chunk by chunk."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(model, "model.onnx")
        for name, size in pads:
            with zf.open(name, "w") as out:
                for start in range(0, size, MIB):
                    out.write(ZEROS[: min(MIB, size - start)])
        for name, data in (packed or {}).items():
            zf.writestr(name, data)
    return path


def post_zip(client: TestClient, archive: Path) -> object:
    with open(archive, "rb") as f:  # streamed from the file, not built in memory
        return client.post("/api/sessions", files={"file": ("bundle.zip", f)})


def assert_nothing_left(client: TestClient) -> None:
    store = client.app.state.store
    assert list(store.staging.iterdir()) == [] and list(store.sessions.iterdir()) == []


def test_many_members_each_under_a_per_member_threshold_are_refused_by_the_total(
    data_dir: Path, tmp_path: Path, fixture_model
) -> None:
    """The attack of issue 12, scaled down: 120 members of 1 MiB of zeros (the old check let any member of
    up to 1 MiB pass, so 1,500 of them left 1.5 GB on disk). The total ratio trips once past the free size."""
    pads = ((f"pad/{i}.bin", MIB) for i in range(120))
    archive = write_zip(tmp_path / "bomb.zip", fixture_model("logreg_iris"), pads)
    assert archive.stat().st_size < MIB
    with make_client(data_dir, unpack_ratio_free_bytes=8 * MIB) as client:
        err = error_of(post_zip(client, archive), 422, "zip_bomb")
        assert "decompression bomb" in err["message"] and "100 times" in err["message"]
        assert_nothing_left(client)
        assert list(client.app.state.store.staging.parent.rglob("*.bin")) == []


def test_total_unpacked_bytes_are_capped(data_dir: Path, tmp_path: Path, fixture_model) -> None:
    archive = write_zip(tmp_path / "big.zip", fixture_model("logreg_iris"), [("pad/a.bin", 3 * MIB)])
    with make_client(data_dir, max_unpacked_bytes=2 * MIB) as client:
        err = error_of(post_zip(client, archive), 413, "too_large")
        assert "2,097,152" in err["message"]
        assert_nothing_left(client)


def test_a_zip_whose_headers_understate_its_members_is_refused(data_dir: Path, tmp_path: Path, fixture_model) -> None:
    """Members that declare 1 byte each but hold 1 MiB: nothing trusts the declared sizes."""
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(fixture_model("logreg_iris"), "model.onnx")
        for i in range(40):
            zf.writestr(f"pad/{i}.bin", ZEROS)
        for info in zf.filelist[1:]:
            info.file_size = 1  # what the central directory will say
    declared = sum(i.file_size for i in zipfile.ZipFile(archive).infolist())
    assert declared < 10_000
    with make_client(data_dir, unpack_ratio_free_bytes=4 * MIB) as client:
        r = post_zip(client, archive)
        assert r.status_code in (413, 422), r.text
        error_of(r, r.status_code)
        assert_nothing_left(client)


def test_many_tiny_members_are_refused_by_count(data_dir: Path, tmp_path: Path, fixture_model) -> None:
    archive = write_zip(tmp_path / "many.zip", fixture_model("logreg_iris"), ((f"e/{i}", 0) for i in range(60)))
    with make_client(data_dir, max_upload_files=50) as client:
        err = error_of(post_zip(client, archive), 413, "too_many_files")
        assert "50" in err["message"]
        assert_nothing_left(client)


def test_many_files_without_a_zip_are_refused_by_count_and_size(data_dir: Path, fixture_model) -> None:
    model = fixture_model("logreg_iris")
    files = [("file", (model.name, model.read_bytes()))] + [("data", (f"w{i}.bin", b"x")) for i in range(60)]
    with make_client(data_dir, max_upload_files=50) as client:
        error_of(client.post("/api/sessions", files=files), 413, "too_many_files")
        assert_nothing_left(client)
    files = [("file", (model.name, model.read_bytes()))] + [("data", (f"w{i}.bin", ZEROS)) for i in range(3)]
    with make_client(data_dir, max_unpacked_bytes=2 * MIB) as client:
        error_of(client.post("/api/sessions", files=files), 413, "too_large")
        assert_nothing_left(client)


def test_text_fields_are_limited_in_all(client: TestClient, fixture_model) -> None:
    """Text fields are held in memory: several fields each under 16 MiB must not add up without end."""
    model = fixture_model("logreg_iris").read_bytes()
    fields = {f"f{i}": "x" * (6 * MIB) for i in range(3)}
    err = error_of(client.post("/api/sessions", files={"file": ("m.onnx", model)}, data=fields), 413, "too_large")
    assert "in all" in err["message"]
    fields = {f"f{i}": "" for i in range(1001)}
    error_of(client.post("/api/sessions", files={"file": ("m.onnx", model)}, data=fields), 413, "too_many_fields")
    assert_nothing_left(client)


def test_a_nested_zip_stays_packed(data_dir: Path, tmp_path: Path, fixture_model) -> None:
    """A bomb inside the zip is a file of the upload like any other: never unpacked, counted at its size."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(64 * MIB))
    archive = write_zip(tmp_path / "nested.zip", fixture_model("logreg_iris"), [], {"inner.zip": inner.getvalue()})
    with make_client(data_dir, unpack_ratio_free_bytes=MIB) as client:
        r = post_zip(client, archive)
        assert r.status_code == 201, r.text
        folder = client.app.state.store.sessions / r.json()["id"]
        assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) < MIB


def test_a_zipped_model_with_external_data_passes_the_ratio(
    data_dir: Path, tmp_path: Path, external_model: list[Path]
) -> None:
    """Real weights pack about 1:1, so the ratio never trips on them, even when it applies from 1 MiB."""
    model, data = external_model
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(model, "bundle/" + model.name)
        zf.write(data, "bundle/" + data.name)
    with make_client(data_dir, unpack_ratio_free_bytes=MIB, max_upload_files=3) as client:
        r = post_zip(client, archive)
        assert r.status_code == 201, r.text
        assert r.json()["summary"]["external_data"] is True and r.json()["summary"]["weights_bytes"] > 20_000_000
        r = client.post(
            "/api/sessions",
            files=[("file", (model.name, model.read_bytes())), ("data", (data.name, data.read_bytes()))],
        )
        assert r.status_code == 201, r.text
        assert list(client.app.state.store.staging.iterdir()) == []


def test_calibration_zips_share_one_budget(data_dir: Path, tmp_path: Path, fixture_model) -> None:
    """Two zips in one quantization upload, each under the cap, together over it."""
    with make_client(data_dir, max_unpacked_bytes=3 * MIB) as client:
        model = fixture_model("logreg_iris")
        sid = client.post("/api/sessions", files={"file": (model.name, model.read_bytes())}).json()["id"]
        parts = []
        for field in ("data", "validation"):
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr("imgs/a.bin", bytes(2 * MIB))
            parts.append((field, (f"{field}.zip", buf.getvalue())))
        err = error_of(client.post(f"/api/sessions/{sid}/quant", files=parts), 413, "too_large")
        assert "3,145,728" in err["message"]
        quant = client.app.state.store.sessions / sid / "quant"
        assert [p.name for p in quant.iterdir()] in ([], ["jobs"])  # the job's folder is gone
        assert list(client.app.state.store.staging.iterdir()) == []


def _unpack(budget: DiskBudget, sizes: Iterable[int]) -> None:
    for size in sizes:
        budget.add_files(1)
        for start in range(0, size, 64 * MIB):
            budget.add_bytes(min(64 * MIB, size - start))


def test_default_policy_on_the_sizes_of_real_uploads_and_of_the_attack() -> None:
    settings = Settings()
    attack = DiskBudget(settings)
    attack.received = 1_700_000  # 1,500 members of 1 MiB of zeros
    with pytest.raises(ApiError) as refused:
        _unpack(attack, [MIB] * 1500)
    assert refused.value.code == "zip_bomb" and attack.bytes <= settings.unpack_ratio_free_bytes + MIB
    real = DiskBudget(settings)
    real.received = 1_800_000_000  # a 2 GB model with external data, zipped
    _unpack(real, [300_000, 2_000_000_000])
    zeros = DiskBudget(settings)
    zeros.received = 4_000_000  # a small model with large zero tensors: any ratio below the free size
    _unpack(zeros, [200 * MIB])
    sparse = DiskBudget(settings)
    sparse.received = 600_000_000  # 1 GB of zero tensors beside 600 MB of real weights
    _unpack(sparse, [1_000_000_000, 660_000_000])
    huge = DiskBudget(settings)
    huge.received = 4 * MIB
    with pytest.raises(ApiError) as refused:
        _unpack(huge, [settings.max_unpacked_bytes + 1])
    assert refused.value.status in (413, 422)


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONNX_WORKBENCH_MAX_UPLOAD_BYTES", "8e9")
    settings = Settings.from_env()
    assert settings.max_upload_bytes == settings.max_unpacked_bytes == 8_000_000_000  # follows the upload limit
    for name, value in (
        ("MAX_UNPACKED_BYTES", "16e9"),
        ("MAX_UNPACK_RATIO", "200"),
        ("MAX_UPLOAD_FILES", "50"),
        ("UNPACK_RATIO_FREE_BYTES", "1e9"),
        ("MAX_RUN_ELEMENTS", "1000"),
    ):
        monkeypatch.setenv("ONNX_WORKBENCH_" + name, value)
    settings = Settings.from_env()
    assert (
        settings.max_unpacked_bytes,
        settings.max_unpack_ratio,
        settings.max_upload_files,
        settings.unpack_ratio_free_bytes,
        settings.max_run_elements,
    ) == (16e9, 200, 50, 1e9, 1000)
