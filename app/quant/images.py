"""Image calibration data: files, folders or a .zip of images, resized and normalized Acuity-style."""

from __future__ import annotations

import importlib.util
import io
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.quant.errors import QuantError
from app.quant.samples import Batch, CalibrationData, describe_input, static_shapes
from app.runtime.inputs import InputSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


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
            raise QuantError(f"images cannot feed input {describe_input(spec)}")
        self.shapes = static_shapes(self.specs, shapes)
        shape = self.shapes[spec.name]
        if len(shape) != 4:
            raise QuantError(f"images need a 4-D input (N, C, H, W or N, H, W, C); {describe_input(spec)} is not")
        layout = preprocess.layout or ("nchw" if shape[1] in (1, 3) else "nhwc" if shape[3] in (1, 3) else "")
        if layout not in ("nchw", "nhwc"):
            raise QuantError(f"cannot tell the channel axis of {describe_input(spec)}; give the layout (nchw or nhwc)")
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


def zip_has_images(path: Path) -> bool:
    """True when the archive holds an image (else its members are taken for arrays)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(Path(m).suffix.lower() in IMAGE_SUFFIXES for m in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
