"""Streaming multipart uploads straight into a folder, and safe unpacking of zip uploads.

Nothing here holds an upload in memory: file parts are written to disk chunk by chunk as they
arrive, the size limit is enforced while reading (and up front from Content-Length), file names
are reduced to safe relative paths, and zip members are checked for traversal, links and bombs.
"""
from __future__ import annotations

import os
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from fastapi import Request
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.exceptions import HTTPException

from .errors import ApiError

MAX_TEXT_FIELD = 16 << 20
MAX_ZIP_MEMBERS = 10_000
MAX_ZIP_RATIO = 200  # uncompressed / compressed, for members big enough to matter
ZIP_MAGIC = b"PK\x03\x04"


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

    def file(self, name: str) -> UploadedFile | None:
        return next((f for f in self.files if f.field == name), None)


def safe_relative_path(name: str, what: str = "file name") -> PurePosixPath:
    """A client-given path as a relative path that cannot leave the folder it is placed in."""
    if not name or "\x00" in name or "\\" in name or any(ord(c) < 32 for c in name):
        raise ApiError(400, "bad_file_name", f"{what} '{name}' is not a plain relative path", {"name": name})
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")) or len(path.parts) > 16 \
            or any(len(part.encode()) > 255 for part in path.parts):
        raise ApiError(400, "bad_file_name", f"{what} '{name}' must be a relative path without '..', "
                       "leading '/' or empty parts", {"name": name})
    return path


class _Receiver:
    """Callbacks for python-multipart's parser: one open file (or text buffer) per part."""

    def __init__(self, dest: Path, file_fields: set[str]):
        self.dest = dest
        self.file_fields = file_fields
        self.upload = Upload()
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.out: BinaryIO | None = None
        self.current: UploadedFile | None = None
        self.text: bytearray | None = None
        self.text_name = ""
        self.error: ApiError | None = None

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.part_begin, "on_header_field": self.header_field_data,
            "on_header_value": self.header_value_data, "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
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
            self.text, self.text_name = bytearray(), name
            return
        if name not in self.file_fields:
            raise ApiError(422, "unexpected_field", f"unexpected file field '{name}'; this endpoint takes "
                           f"{', '.join(sorted(self.file_fields))}", {"field": name})
        rel = safe_relative_path(filename.decode("utf-8", "replace") or name)
        if any(f.name == str(rel) for f in self.upload.files):
            raise ApiError(422, "duplicate_file", f"the upload holds two files named '{rel}'", {"name": str(rel)})
        path = self.dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.out = open(path, "wb")
        self.current = UploadedFile(name, str(rel), path, 0)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.out is not None and self.current is not None:
            self.out.write(data[start:end])
            self.current.size += end - start
        elif self.text is not None:
            self.text += data[start:end]
            if len(self.text) > MAX_TEXT_FIELD:
                raise ApiError(413, "too_large", f"form field '{self.text_name}' is over {MAX_TEXT_FIELD >> 20} MiB; "
                               "send it as a file")

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


async def receive_multipart(request: Request, dest: Path, limit: int, file_fields: set[str]) -> Upload:
    """Stream a multipart/form-data body into `dest` (created); text fields come back as strings."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "send the model as multipart/form-data (field 'file'), "
                       f"not '{content_type.decode('latin-1') or 'no content type'}'")
    boundary = options.get(b"boundary")
    if not boundary:
        raise ApiError(400, "bad_multipart", "multipart/form-data without a boundary")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"the upload is {int(declared):,} bytes; the limit is {limit:,}",
                       {"limit": limit})
    dest.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(dest, file_fields)
    parser = MultipartParser(boundary, receiver.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise ApiError(413, "too_large", f"the upload is over the limit of {limit:,} bytes", {"limit": limit})
            parser.write(chunk)
        parser.finalize()
    except (ApiError, HTTPException):  # HTTPException: the body limit of the middleware
        raise
    except Exception as err:  # python-multipart raises its own error types for malformed bodies
        raise ApiError(400, "bad_multipart", f"the multipart body could not be read: {err}") from None
    finally:
        receiver.close()
    return receiver.upload


def is_zip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == ZIP_MAGIC


def unpack_zip(archive: Path, dest: Path, limit: int) -> list[Path]:
    """Extract a zip into `dest`, refusing traversal, links, devices and decompression bombs."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise ApiError(422, "bad_zip", f"the zip file could not be read: {err}") from None
    written: list[Path] = []
    with zf:
        members = zf.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise ApiError(422, "bad_zip", f"the zip holds {len(members)} entries; at most {MAX_ZIP_MEMBERS}")
        declared = sum(m.file_size for m in members)
        if declared > limit:
            raise ApiError(413, "too_large", f"the zip unpacks to {declared:,} bytes; the limit is {limit:,}",
                           {"limit": limit})
        total = 0
        for member in members:
            rel = safe_relative_path(member.filename.rstrip("/") if member.is_dir() else member.filename,
                                     "zip entry")
            kind = stat.S_IFMT(member.external_attr >> 16)  # 0 when the zip tool recorded no file type
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise ApiError(422, "bad_zip", f"zip entry '{member.filename}' is a link or special file",
                               {"name": member.filename})
            if member.is_dir():
                (dest / rel).mkdir(parents=True, exist_ok=True)
                continue
            if member.file_size > (1 << 20) and member.file_size > MAX_ZIP_RATIO * max(1, member.compress_size):
                raise ApiError(422, "zip_bomb", f"zip entry '{member.filename}' expands {member.file_size:,} bytes "
                               f"from {member.compress_size:,}; refused as a decompression bomb",
                               {"name": member.filename})
            target = dest / rel
            if target.exists():
                raise ApiError(422, "duplicate_file", f"the zip holds '{rel}' twice", {"name": str(rel)})
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(member) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        total += len(chunk)
                        if total > limit:  # the headers lied
                            raise ApiError(413, "too_large", f"the zip unpacks to more than {limit:,} bytes",
                                           {"limit": limit})
                        out.write(chunk)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as err:
                raise ApiError(422, "bad_zip", f"zip entry '{member.filename}' could not be read: {err}") from None
            written.append(target)
    return written


def stage_model(upload: Upload, folder: Path, limit: int) -> Path:
    """The model file of an upload already streamed into `folder`: the .onnx itself, or the one in the zip."""
    main = upload.file("file")
    if main is None:
        raise ApiError(422, "missing_file", "the upload has no 'file' part (the .onnx model or a .zip of it)")
    if is_zip(main.path):
        if len(upload.files) > 1:
            raise ApiError(422, "bad_upload", "send either one .zip, or the .onnx with its data files, not both")
        unpacked = folder.parent / (folder.name + ".unzip")
        shutil.rmtree(unpacked, ignore_errors=True)
        try:
            unpack_zip(main.path, unpacked, limit)
            main.path.unlink()
            shutil.rmtree(folder)
            os.replace(unpacked, folder)
        finally:
            shutil.rmtree(unpacked, ignore_errors=True)
        models = sorted(p for p in folder.rglob("*.onnx") if p.is_file())
        if len(models) != 1:
            found = ", ".join(str(p.relative_to(folder)) for p in models) or "none"
            raise ApiError(422, "bad_zip", f"the zip must hold exactly one .onnx file (found: {found})")
        return models[0]
    return main.path
