"""Calibration data: .npz/.npy arrays, images with Acuity-style preprocessing, or random.

Every source yields one batch at a time and re-reads its files on each pass, so memory
does not grow with the number of samples: .npy files are memory-mapped and .npz members
are streamed sample by sample out of the zip (stored or deflated alike).
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from app.graph.guard import element_count
from app.quant.errors import QuantError
from app.quant.model import InputSpec

Batch = dict[str, np.ndarray]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def _describe(spec: InputSpec) -> str:
    dims = "x".join("?" if d is None else str(d) for d in spec.shape)
    return f"{spec.name} ({spec.dtype}, {dims})"


def _dynamic_dims(spec: InputSpec) -> list[str]:
    return [
        f"dim {i} ({d!r})" if d is not None else f"dim {i} (unknown)"
        for i, d in enumerate(spec.shape)
        if not isinstance(d, int)
    ]


def static_shapes(
    specs: Sequence[InputSpec], overrides: Mapping[str, Sequence[int]] | None = None
) -> dict[str, tuple[int, ...]]:
    """Concrete input shapes when no data can tell the dynamic dims; errors name them."""
    overrides = overrides or {}
    shapes, problems = {}, []
    for spec in specs:
        if spec.name in overrides:
            shape = tuple(int(d) for d in overrides[spec.name])
            if len(shape) != len(spec.shape) or any(
                isinstance(d, int) and d != s for d, s in zip(spec.shape, shape, strict=True)
            ):
                raise QuantError(f"shape {shape} given for input {_describe(spec)} does not fit its declared dims")
            shapes[spec.name] = shape
            continue
        dynamic = _dynamic_dims(spec)
        if dynamic:
            problems.append(f"input {spec.name!r}: " + ", ".join(dynamic))
        else:
            shapes[spec.name] = tuple(int(d) for d in spec.shape)  # type: ignore[arg-type]
    if problems:
        raise QuantError(
            "the model has dynamic dimensions that the calibration data cannot tell: "
            + "; ".join(problems)
            + ". Make them static first (e.g. fix the input shape in the "
            "graph editor) or give the shape, e.g. --shape x=1x3x640x640"
        )
    return shapes


class CalibrationData:
    """A re-iterable source of input batches, each a dict input name -> array."""

    specs: list[InputSpec]
    shapes: dict[str, tuple[int, ...]]
    num_samples: int
    batch_size: int
    synthetic: bool = False
    description: str = ""

    @property
    def num_batches(self) -> int:
        return self.num_samples // self.batch_size

    def batches(self) -> Iterator[Batch]:
        """Batches in order, one pass over the data."""
        raise NotImplementedError


def _check_kind(spec: InputSpec, dtype: np.dtype, where: str) -> None:
    kinds = {"f": "float", "i": "integer", "u": "integer", "b": "bool"}
    if kinds.get(dtype.kind) != kinds.get(spec.dtype.kind):
        raise QuantError(f"{where} has dtype {dtype} but input {_describe(spec)} needs {spec.dtype}")


def _resolve(
    specs: Sequence[InputSpec], data_shapes: dict[str, tuple[int, ...]], where: str
) -> tuple[dict[str, tuple[int, ...]], int, int]:
    """Input shapes, batch size and sample count from arrays stacked on the batch axis."""
    names = {s.name for s in specs}
    missing, extra = sorted(names - set(data_shapes)), sorted(set(data_shapes) - names)
    if missing or extra:
        raise QuantError(
            f"{where}: input names do not match the model: "
            + (f"missing {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unexpected {extra}" if extra else "")
            + f" (the model's inputs: {sorted(names)})"
        )
    shapes, counts = {}, {}
    symbols: dict[str, int] = {}  # a named dim's size, the same in every input that has it
    batch_size = None
    for spec in specs:
        shape = data_shapes[spec.name]
        if len(shape) != len(spec.shape) or len(shape) == 0:
            raise QuantError(
                f"{where}: array {spec.name!r} has shape {shape}; expected samples stacked on the "
                f"first axis of input {_describe(spec)}, i.e. rank {len(spec.shape)}"
            )
        batch = spec.shape[0] if isinstance(spec.shape[0], int) else 1
        if batch_size not in (None, batch):
            raise QuantError(f"{where}: inputs declare different batch sizes")
        batch_size = batch
        for axis, (declared, got) in enumerate(zip(spec.shape[1:], shape[1:], strict=True), start=1):
            if isinstance(declared, int) and declared != got:
                raise QuantError(
                    f"{where}: array {spec.name!r} has shape {shape}, which does not fit input "
                    f"{_describe(spec)} at dim {axis}"
                )
            if isinstance(declared, str):
                if symbols.setdefault(declared, got) != got:
                    raise QuantError(
                        f"{where}: dim {declared!r} is {symbols[declared]} in one input and {got} in {spec.name!r}"
                    )
        if shape[0] % batch:
            raise QuantError(f"{where}: {shape[0]} samples of {spec.name!r} do not fill whole batches of {batch}")
        shapes[spec.name] = (batch, *shape[1:])
        counts[spec.name] = shape[0]
    if len(set(counts.values())) > 1:
        raise QuantError(f"{where}: inputs have different sample counts: {counts}")
    num_samples = next(iter(counts.values()))
    if num_samples == 0:
        raise QuantError(f"{where}: no samples")
    return shapes, int(batch_size or 1), int(num_samples)


class _NpyStream:
    """Reads an .npy stream sequentially, ``count`` leading-axis rows at a time."""

    def __init__(self, stream: IO[bytes], where: str) -> None:
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except ValueError as exc:
            raise QuantError(f"{where} is not a valid .npy array: {exc}") from exc
        if fortran and len(shape) > 1:
            raise QuantError(f"{where} is stored in Fortran order; save it with np.ascontiguousarray")
        if dtype.hasobject:
            raise QuantError(f"{where} holds Python objects, not numbers")
        self.stream, self.shape, self.dtype = stream, tuple(shape), dtype
        self.row_bytes = element_count(shape[1:]) * dtype.itemsize

    def read(self, count: int) -> np.ndarray:
        raw = self.stream.read(self.row_bytes * count)
        if len(raw) != self.row_bytes * count:
            raise QuantError("calibration file ended early (truncated?)")
        return np.frombuffer(raw, dtype=self.dtype).reshape((count, *self.shape[1:]))


class ArrayData(CalibrationData):
    """Samples from a .npz (one array per input name) or a .npy (single-input models)."""

    def __init__(self, path: str | Path, specs: Sequence[InputSpec]) -> None:
        self.path = Path(path)
        self.specs = list(specs)
        if not self.path.is_file():
            raise QuantError(f"calibration file not found: {self.path}")
        where = self.path.name
        if self.path.suffix.lower() == ".npy":
            if len(self.specs) != 1:
                raise QuantError(
                    f"{where}: a .npy file can only feed a single-input model; this model has inputs "
                    f"{[s.name for s in self.specs]}: use an .npz keyed by input name"
                )
            array = self._open_npy()
            declared = {self.specs[0].name: array.shape}
            dtypes = {self.specs[0].name: array.dtype}
        else:
            declared, dtypes = {}, {}
            try:
                with zipfile.ZipFile(self.path) as archive:
                    for member in archive.namelist():
                        if member.endswith(".npy"):
                            with archive.open(member) as stream:
                                header = _NpyStream(stream, f"{where}:{member}")
                            declared[member[:-4]] = header.shape
                            dtypes[member[:-4]] = header.dtype
            except zipfile.BadZipFile as exc:
                raise QuantError(f"{where} is neither an .npz archive nor an .npy array") from exc
        self.shapes, self.batch_size, self.num_samples = _resolve(self.specs, declared, where)
        for spec in self.specs:
            _check_kind(spec, dtypes[spec.name], f"{where}: array {spec.name!r}")
        self.description = f"{where}: {self.num_samples} samples"

    def _open_npy(self) -> np.ndarray:
        # the .npy format only: np.load would also open a zip as an NpzFile, whatever the file's name
        try:
            return np.lib.format.open_memmap(self.path, mode="r")
        except (ValueError, EOFError, OSError) as exc:
            raise QuantError(f"{self.path.name} is not a valid .npy array: {exc}") from exc

    def batches(self) -> Iterator[Batch]:
        if self.path.suffix.lower() == ".npy":
            spec = self.specs[0]
            array = self._open_npy()
            for start in range(0, self.num_samples, self.batch_size):
                yield {spec.name: np.ascontiguousarray(array[start : start + self.batch_size], dtype=spec.dtype)}
            return
        with zipfile.ZipFile(self.path) as archive:
            streams = {}
            try:
                for spec in self.specs:
                    streams[spec.name] = _NpyStream(archive.open(spec.name + ".npy"), f"{self.path.name}:{spec.name}")
                for _ in range(self.num_batches):
                    yield {
                        s.name: streams[s.name].read(self.batch_size).astype(s.dtype, copy=False) for s in self.specs
                    }
            finally:
                for stream in streams.values():
                    stream.stream.close()


class RandomData(CalibrationData):
    """Seeded random samples, only when asked for: the report marks them as synthetic.

    Floats are standard normal; integer inputs are 1 where the name says mask, else
    uniform in [0, 100) (valid token ids for any vocabulary of 100 or more).
    """

    synthetic = True

    def __init__(
        self,
        specs: Sequence[InputSpec],
        num_samples: int,
        seed: int = 0,
        shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        if num_samples < 1:
            raise QuantError("the number of random samples must be at least 1")
        self.specs = list(specs)
        self.shapes = static_shapes(self.specs, shapes)
        firsts = {shape[0] for shape in self.shapes.values()}
        self.batch_size = firsts.pop() if len(firsts) == 1 else 1
        self.num_samples = num_samples * self.batch_size
        self.seed = seed
        self.description = f"random: {num_samples} batches, seed {seed}"

    def batches(self) -> Iterator[Batch]:
        rng = np.random.default_rng(self.seed)
        for _ in range(self.num_batches):
            batch = {}
            for spec in self.specs:
                shape = self.shapes[spec.name]
                if spec.dtype.kind == "f":
                    batch[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
                elif spec.dtype.kind == "b":
                    batch[spec.name] = rng.random(shape) < 0.5
                elif "mask" in spec.name.lower():
                    batch[spec.name] = np.ones(shape, dtype=spec.dtype)
                else:
                    batch[spec.name] = rng.integers(0, 100, shape).astype(spec.dtype)
            yield batch


@dataclass(frozen=True)
class ImagePreprocess:
    """Acuity-style input meta: ``(pixel - mean) * scale`` (or ``/ std``), RGB or BGR, NCHW/NHWC.

    ``layout`` None finds the channel axis from the model's input shape (3 or 1 channels).
    """

    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    scale: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channel_order: str = "rgb"
    layout: str | None = None


class ImageData(CalibrationData):
    """Image files (paths, folders or a .zip of images) resized to the model's single input."""

    def __init__(
        self,
        sources: Sequence[str | Path],
        specs: Sequence[InputSpec],
        preprocess: ImagePreprocess,
        shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        if importlib.util.find_spec("PIL") is None:
            raise QuantError("image calibration data needs Pillow (pip install pillow)")
        self.specs = list(specs)
        if len(self.specs) != 1:
            raise QuantError(f"images can only feed a single-input model; this one has {[s.name for s in self.specs]}")
        spec = self.specs[0]
        if spec.dtype.kind not in "fu":
            raise QuantError(f"images cannot feed input {_describe(spec)}")
        self.shapes = static_shapes(self.specs, shapes)
        shape = self.shapes[spec.name]
        if len(shape) != 4:
            raise QuantError(f"images need a 4-D input (N, C, H, W or N, H, W, C); {_describe(spec)} is not")
        layout = preprocess.layout or ("nchw" if shape[1] in (1, 3) else "nhwc" if shape[3] in (1, 3) else "")
        if layout not in ("nchw", "nhwc"):
            raise QuantError(f"cannot tell the channel axis of {_describe(spec)}; give the layout (nchw or nhwc)")
        self.layout = layout
        self.channels = shape[1] if layout == "nchw" else shape[3]
        self.height, self.width = (shape[2], shape[3]) if layout == "nchw" else (shape[1], shape[2])
        if preprocess.channel_order not in ("rgb", "bgr"):
            raise QuantError("channel order must be rgb or bgr")
        if preprocess.scale is not None and preprocess.std is not None:
            raise QuantError("give either scale or std, not both")
        self.preprocess = preprocess
        self.paths = self._collect(sources)
        if not self.paths:
            raise QuantError("no image files found in " + ", ".join(str(s) for s in sources))
        self.batch_size = shape[0]
        self.num_samples = len(self.paths) - len(self.paths) % self.batch_size
        if self.num_samples == 0:
            raise QuantError(f"{len(self.paths)} images do not fill one batch of {self.batch_size}")
        self.description = f"{self.num_samples} images"

    @staticmethod
    def _collect(sources: Sequence[str | Path]) -> list[tuple[Path, str | None]]:
        found: list[tuple[Path, str | None]] = []
        for source in sources:
            path = Path(source)
            if path.is_dir():
                found += [(p, None) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
            elif path.suffix.lower() == ".zip":
                try:
                    with zipfile.ZipFile(path) as archive:
                        found += [
                            (path, m)
                            for m in sorted(archive.namelist())
                            if Path(m).suffix.lower() in IMAGE_SUFFIXES and not m.startswith("__MACOSX")
                        ]
                except zipfile.BadZipFile as exc:
                    raise QuantError(f"{path.name} is not a readable zip archive") from exc
            elif path.is_file():
                found.append((path, None))
            else:
                raise QuantError(f"image source not found: {path}")
        return found

    def _vector(self, values: tuple[float, ...] | None, default: float) -> np.ndarray:
        if values is None:
            return np.full(self.channels, default, dtype=np.float32)
        v = np.asarray(values, dtype=np.float32).reshape(-1)
        if v.size == 1:
            return np.full(self.channels, v[0], dtype=np.float32)
        if v.size != self.channels:
            raise QuantError(f"{v.size} values given for {self.channels} channels")
        return v

    def _load(self, path: Path, member: str | None) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        label = f"{path.name}:{member}" if member else path.name
        image: Image.Image
        try:
            if member is None:
                image = Image.open(path)
            else:
                with zipfile.ZipFile(path) as archive:
                    image = Image.open(io.BytesIO(archive.read(member)))
            image = image.convert("L" if self.channels == 1 else "RGB")
            image = image.resize((self.width, self.height), Image.Resampling.BILINEAR)
        except (UnidentifiedImageError, OSError) as exc:
            raise QuantError(f"cannot read image {label}: {exc}") from exc
        pixels = np.asarray(image, dtype=np.float32).reshape(self.height, self.width, self.channels)
        if self.preprocess.channel_order == "bgr":
            pixels = pixels[:, :, ::-1]
        return pixels

    def batches(self) -> Iterator[Batch]:
        spec = self.specs[0]
        mean = self._vector(self.preprocess.mean, 0.0)
        if self.preprocess.std is not None:
            scale = 1.0 / self._vector(self.preprocess.std, 1.0)
        else:
            scale = self._vector(self.preprocess.scale, 1.0)
        for start in range(0, self.num_samples, self.batch_size):
            images = np.stack([self._load(*p) for p in self.paths[start : start + self.batch_size]])
            if spec.dtype.kind == "f":
                images = (images - mean) * scale
            if self.layout == "nchw":
                images = images.transpose(0, 3, 1, 2)
            yield {spec.name: np.ascontiguousarray(images, dtype=spec.dtype)}


def open_calibration_data(
    specs: Sequence[InputSpec],
    data: str | Path | Sequence[str | Path] | None = None,
    random_samples: int | None = None,
    preprocess: ImagePreprocess | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    seed: int = 0,
) -> CalibrationData:
    """Pick the source for what the user gave: arrays, images (files, folders, zip) or random."""
    if data is None or (isinstance(data, (list, tuple)) and not data):
        if random_samples is None:
            raise QuantError("no calibration data given; pass a .npz/.npy file or images, or ask for random data")
        return RandomData(specs, random_samples, seed, shapes)
    if random_samples is not None:
        raise QuantError("give either calibration data or a number of random samples, not both")
    paths = [Path(p) for p in ([data] if isinstance(data, (str, Path)) else data)]
    if len(paths) == 1 and paths[0].suffix.lower() in (".npz", ".npy"):
        return ArrayData(paths[0], specs)
    zip_of_arrays = len(paths) == 1 and paths[0].suffix.lower() == ".zip" and not _zip_has_images(paths[0])
    if zip_of_arrays:
        raise QuantError(f"{paths[0].name} holds no images; arrays go in an .npz file")
    return ImageData(paths, specs, preprocess or ImagePreprocess(), shapes)


def _zip_has_images(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(Path(m).suffix.lower() in IMAGE_SUFFIXES for m in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
