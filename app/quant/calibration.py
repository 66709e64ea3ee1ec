"""Calibration data: .npz/.npy arrays, images with Acuity-style preprocessing (images.py), or random.

Every source yields one batch at a time and re-reads its files on each pass, so memory
does not grow with the number of samples: .npy files are memory-mapped and .npz members
are streamed sample by sample out of the zip (stored or deflated alike).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from app.graph.guard import element_count
from app.quant.errors import QuantError
from app.quant.images import ImageData, ImagePreprocess, zip_has_images
from app.quant.samples import Batch, CalibrationData, declared_dims, describe_input, static_shapes
from app.runtime.errors import BadArray, BadInputs
from app.runtime.inputs import InputSpec, random_inputs
from app.runtime.npy import member_name, read_header


def _check_kind(spec: InputSpec, dtype: np.dtype, where: str) -> None:
    kinds = {"f": "float", "i": "integer", "u": "integer", "b": "bool"}
    if kinds.get(dtype.kind) != kinds.get(spec.dtype.kind):
        raise QuantError(f"{where} has dtype {dtype} but input {describe_input(spec)} needs {spec.dtype}")


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
        shape, dims = data_shapes[spec.name], declared_dims(spec)
        if len(shape) != len(dims) or len(shape) == 0:
            raise QuantError(
                f"{where}: array {spec.name!r} has shape {shape}; expected samples stacked on the "
                f"first axis of input {describe_input(spec)}, i.e. rank {len(dims)}"
            )
        batch = first if isinstance(first := dims[0], int) else 1
        if batch_size not in (None, batch):
            raise QuantError(f"{where}: inputs declare different batch sizes")
        batch_size = batch
        for axis, (declared, got) in enumerate(zip(dims[1:], shape[1:], strict=True), start=1):
            if isinstance(declared, int) and declared != got:
                raise QuantError(
                    f"{where}: array {spec.name!r} has shape {shape}, which does not fit input "
                    f"{describe_input(spec)} at dim {axis}"
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
            shape, dtype, fortran = read_header(stream)
        except BadArray as exc:
            if exc.details.get("objects"):
                raise QuantError(f"{where} holds Python objects, not numbers") from exc
            raise QuantError(f"{where} is not a valid .npy array: {exc.cause}") from exc
        if fortran and len(shape) > 1:
            raise QuantError(f"{where} is stored in Fortran order; save it with np.ascontiguousarray")
        self.stream, self.shape, self.dtype = stream, shape, dtype
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
                            declared[member_name(member)] = header.shape
                            dtypes[member_name(member)] = header.dtype
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

    The values are the server's random inputs (``app.runtime.inputs.random_inputs``): floats standard
    normal, integers and bools 0 or 1.
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
            try:
                batch = random_inputs(rng, self.specs, self.shapes)
            except BadInputs as exc:
                raise QuantError(exc.message) from exc
            yield batch


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
    zip_of_arrays = len(paths) == 1 and paths[0].suffix.lower() == ".zip" and not zip_has_images(paths[0])
    if zip_of_arrays:
        raise QuantError(f"{paths[0].name} holds no images; arrays go in an .npz file")
    return ImageData(paths, specs, preprocess or ImagePreprocess(), shapes)
