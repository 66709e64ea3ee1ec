"""Streaming multipart uploads straight into a folder, and safe unpacking of zip uploads.

Nothing here holds an upload in memory: file parts are written to disk chunk by chunk as they
arrive, the size limit is enforced while reading (and up front from Content-Length), file names
are reduced to safe relative paths, and zip members are checked for traversal and links. What an
upload takes on disk once unpacked is counted by one `DiskBudget` per upload, over all its files
and zips, from the bytes actually written.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO

from fastapi import Request
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.exceptions import HTTPException

from .errors import BadRequest, Invalid, ServiceError, TooLarge, UnsupportedMedia, is_disk_full
from .settings import Settings

if TYPE_CHECKING:  # python-multipart declares its callback table for type checkers only
    from python_multipart.multipart import MultipartCallbacks

MAX_TEXT_BYTES = 16 << 20  # text fields are held in memory: names and values of all of them
MAX_TEXT_FIELDS = 1000
ZIP_MAGIC = b"PK\x03\x04"


class DiskBudget:
    """The files of one upload on disk, counted as they are written (a zip's headers may lie), against
    the limits of the settings: files and bytes in all, and bytes per byte received once past a free size."""

    def __init__(self, settings: Settings):
        self.max_bytes = settings.max_unpacked_bytes
        self.max_files = settings.max_upload_files
        self.max_ratio = settings.max_unpack_ratio
        self.ratio_free = settings.unpack_ratio_free_bytes
        self.received = 0  # bytes of the request body
        self.bytes = 0
        self.files = 0

    def add_files(self, count: int) -> None:
        self.files += count
        if self.files > self.max_files:
            raise TooLarge(
                "too_many_files",
                f"the upload holds more than {self.max_files:,} files (zip entries included); send fewer, larger files",
                {"limit": self.max_files},
            )

    def add_bytes(self, count: int) -> None:
        self.bytes += count
        self.check(self.bytes)

    def check(self, total: int) -> None:
        """Refuse the upload if its files would come to `total` bytes on disk."""
        if total > self.max_bytes:
            raise TooLarge(
                "too_large",
                f"the upload unpacks to more than {self.max_bytes:,} bytes, the limit",
                {"limit": self.max_bytes},
            )
        if total > self.ratio_free and total > self.max_ratio * self.received:
            raise Invalid(
                "zip_bomb",
                f"the upload unpacks to more than {self.max_ratio} times the "
                f"{self.received:,} bytes sent; refused as a decompression bomb (a large model that is "
                "mostly zeros can be sent unzipped)",
                {"max_ratio": self.max_ratio, "received": self.received},
            )

    def replace(self, size: int) -> None:
        """A received zip of `size` bytes gives way to its members: it no longer counts."""
        self.files -= 1
        self.bytes -= size


@dataclass
class UploadedFile:
    field: str
    name: str  # safe relative path (as sent by the client, checked)
    path: Path
    size: int


@dataclass
class Upload:
    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    budget: DiskBudget | None = None  # set for a multipart upload, whose files can be zips

    def file(self, name: str) -> UploadedFile | None:
        return next((f for f in self.files if f.field == name), None)


def safe_relative_path(name: str, what: str = "file name") -> PurePosixPath:
    """A client-given path as a relative path that cannot leave the folder it is placed in."""
    if not name or "\x00" in name or "\\" in name or any(ord(c) < 32 for c in name):
        raise BadRequest("bad_file_name", f"{what} '{name}' is not a plain relative path", {"name": name})
    path = PurePosixPath(name)
    if (
        path.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
        or len(path.parts) > 16
        or any(len(part.encode()) > 255 for part in path.parts)
    ):
        raise BadRequest(
            "bad_file_name",
            f"{what} '{name}' must be a relative path without '..', leading '/' or empty parts",
            {"name": name},
        )
    return path


class _Receiver:
    """Callbacks for python-multipart's parser: one open file (or text buffer) per part."""

    def __init__(self, dest: Path, file_fields: set[str], budget: DiskBudget):
        self.dest = dest
        self.file_fields = file_fields
        self.budget = budget
        self.upload = Upload(budget=budget)
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.out: BinaryIO | None = None
        self.current: UploadedFile | None = None
        self.text: bytearray | None = None
        self.text_name = ""
        self.text_bytes = 0  # of all text fields so far
        self.names: set[str] = set()  # of the files so far

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field_data,
            "on_header_value": self.header_value_data,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self.headers = {}

    def header_field_data(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def header_value_data(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = self.header_value = b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            if len(self.upload.fields) >= MAX_TEXT_FIELDS:
                raise TooLarge(
                    "too_many_fields",
                    f"the form has more than {MAX_TEXT_FIELDS} text fields",
                    {"limit": MAX_TEXT_FIELDS},
                )
            self.text, self.text_name = bytearray(), name
            self._count_text(len(name))
            return
        if name not in self.file_fields:
            raise Invalid(
                "unexpected_field",
                f"unexpected file field '{name}'; this endpoint takes {', '.join(sorted(self.file_fields))}",
                {"field": name},
            )
        rel = safe_relative_path(filename.decode("utf-8", "replace") or name)
        if str(rel) in self.names:
            raise Invalid("duplicate_file", f"the upload holds two files named '{rel}'", {"name": str(rel)})
        self.budget.add_files(1)
        self.names.add(str(rel))
        path = self.dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.out = open(path, "wb")
        self.current = UploadedFile(name, str(rel), path, 0)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.out is not None and self.current is not None:
            self.out.write(data[start:end])
            self.current.size += end - start
            self.budget.add_bytes(end - start)
        elif self.text is not None:
            self.text += data[start:end]
            self._count_text(end - start)

    def _count_text(self, count: int) -> None:
        self.text_bytes += count
        if self.text_bytes > MAX_TEXT_BYTES:
            raise TooLarge(
                "too_large",
                f"the form's text fields are over {MAX_TEXT_BYTES >> 20} MiB in all "
                f"(at '{self.text_name}'); send large data as a file",
                {"limit": MAX_TEXT_BYTES},
            )

    def part_end(self) -> None:
        if self.out is not None and self.current is not None:
            self.out.close()
            self.upload.files.append(self.current)
            self.out, self.current = None, None
        elif self.text is not None:
            self.upload.fields[self.text_name] = self.text.decode("utf-8", "replace")
            self.text = None

    def close(self) -> None:
        if self.out is not None:
            self.out.close()


async def receive_multipart(
    request: Request, dest: Path, limit: int, file_fields: set[str], settings: Settings
) -> Upload:
    """Stream a multipart/form-data body of at most `limit` bytes into `dest` (created), its files within
    the disk budget of `settings`; text fields come back as strings."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise UnsupportedMedia(
            "unsupported_media_type",
            "send the model as multipart/form-data (field 'file'), "
            f"not '{content_type.decode('latin-1') or 'no content type'}'",
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("bad_multipart", "multipart/form-data without a boundary")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge("too_large", f"the upload is {int(declared):,} bytes; the limit is {limit:,}", {"limit": limit})
    dest.mkdir(parents=True, exist_ok=True)
    budget = DiskBudget(settings)
    receiver = _Receiver(dest, file_fields, budget)
    parser = MultipartParser(boundary, receiver.callbacks())
    try:
        async for chunk in request.stream():
            budget.received += len(chunk)
            if budget.received > limit:
                raise TooLarge("too_large", f"the upload is over the limit of {limit:,} bytes", {"limit": limit})
            parser.write(chunk)
        parser.finalize()
    except (ServiceError, HTTPException):  # HTTPException: the body limit of the middleware
        raise
    except Exception as err:  # python-multipart raises its own error types for malformed bodies
        if is_disk_full(err):
            raise
        raise BadRequest("bad_multipart", f"the multipart body could not be read: {err}") from None
    finally:
        receiver.close()
    return receiver.upload


def is_zip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == ZIP_MAGIC


def unpack_zip(archive: Path, dest: Path, budget: DiskBudget) -> list[Path]:
    """Extract a zip into `dest`, refusing traversal, links and devices, and stopping as soon as the bytes
    written break the upload's budget (the archive itself stops counting: its members replace it)."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise Invalid("bad_zip", f"the zip file could not be read: {err}") from None
    budget.replace(archive.stat().st_size)
    written: list[Path] = []
    with zf:
        members = zf.infolist()
        budget.add_files(len(members))  # every entry becomes a file or folder
        budget.check(budget.bytes + sum(m.file_size for m in members))  # early, from what the zip declares
        for member in members:
            rel = safe_relative_path(member.filename.rstrip("/") if member.is_dir() else member.filename, "zip entry")
            kind = stat.S_IFMT(member.external_attr >> 16)  # 0 when the zip tool recorded no file type
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise Invalid(
                    "bad_zip", f"zip entry '{member.filename}' is a link or special file", {"name": member.filename}
                )
            if member.is_dir():
                (dest / rel).mkdir(parents=True, exist_ok=True)
                continue
            target = dest / rel
            if target.exists():
                raise Invalid("duplicate_file", f"the zip holds '{rel}' twice", {"name": str(rel)})
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(member) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        budget.add_bytes(len(chunk))
                        out.write(chunk)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as err:
                if is_disk_full(err):
                    raise
                raise Invalid("bad_zip", f"zip entry '{member.filename}' could not be read: {err}") from None
            written.append(target)
    return written


def stage_model(upload: Upload, folder: Path) -> Path:
    """The model file of an upload already streamed into `folder`: the .onnx itself, or the one in the zip."""
    main = upload.file("file")
    if main is None:
        raise Invalid("missing_file", "the upload has no 'file' part (the .onnx model or a .zip of it)")
    if is_zip(main.path):
        if len(upload.files) > 1:
            raise Invalid("bad_upload", "send either one .zip, or the .onnx with its data files, not both")
        unpacked = folder.parent / (folder.name + ".unzip")
        shutil.rmtree(unpacked, ignore_errors=True)
        try:
            assert upload.budget is not None  # files come only from receive_multipart, which sets it
            unpack_zip(main.path, unpacked, upload.budget)
            main.path.unlink()
            shutil.rmtree(folder)
            os.replace(unpacked, folder)
        finally:
            shutil.rmtree(unpacked, ignore_errors=True)
        models = sorted(p for p in folder.rglob("*.onnx") if p.is_file())
        if len(models) != 1:
            found = ", ".join(str(p.relative_to(folder)) for p in models) or "none"
            raise Invalid("bad_zip", f"the zip must hold exactly one .onnx file (found: {found})")
        return models[0]
    return main.path
