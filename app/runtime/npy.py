"""Reading .npy and .npz files without trusting their headers.

One header parser for every caller (the server's tensor uploads and run inputs, the analysis' calibration
data): .npy format versions 1.0, 2.0 and 3.0 (3.0 only allows utf-8 field names), no object arrays. A
header is read before its data, and ``check_size`` refuses a shape that is over a limit or bigger than the
bytes that follow, before numpy allocates anything.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np

from app.graph.guard import element_count
from app.runtime.errors import BadArray, TooBig

#: The .npy format versions numpy writes (numpy.lib.format): 2.0 for headers over 64 KiB, 3.0 for utf-8 names.
VERSIONS = ((1, 0), (2, 0), (3, 0))


class NpyHeader(NamedTuple):
    """What a .npy header declares."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool


def read_header(stream: IO[bytes]) -> NpyHeader:
    """The header of a .npy stream, which is left at the first byte of the data.

    BadArray ``bad_npy`` when it is not a .npy header (its ``cause`` holds numpy's words) or declares
    Python objects (``details["objects"]``), which only a pickle could hold."""
    try:
        version = np.lib.format.read_magic(stream)
        if version not in VERSIONS:
            raise ValueError(f"unsupported .npy format version {version}")
        # 2.0 and 3.0 share the layout (a 4-byte header length); 3.0 only allows utf-8 in field names, which
        # the 2.0 reader decodes as latin-1: harmless, as structured arrays feed no model input or weight
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(stream)
    except (ValueError, OSError, EOFError, SyntaxError) as err:
        raise BadArray("bad_npy", f"not a valid .npy array: {err}", cause=err) from None
    if dtype.hasobject:
        raise BadArray("bad_npy", "object arrays (pickles) are not accepted", {"objects": True})
    return NpyHeader(tuple(int(d) for d in shape), dtype, bool(fortran))


def check_size(header: NpyHeader, available: int, limit: int, what: str) -> None:
    """Refuse absurd or lying headers (TooBig over ``limit`` elements, BadArray beyond ``available`` bytes)."""
    shape, dtype = header.shape, header.dtype
    count = element_count(shape)
    if count > limit:
        raise TooBig(
            "too_large",
            f"{what}: shape {list(shape)} has {count:,} elements; the limit is {limit:,}",
            {"shape": list(shape)},
        )
    if count * dtype.itemsize > available:
        raise BadArray(
            "bad_npy",
            f"{what}: the header says {list(shape)} {dtype} ({count * dtype.itemsize:,} "
            f"bytes) but the file holds {available:,} bytes of data",
            {"shape": list(shape)},
        )


def member_name(member: str) -> str:
    """The array name of an .npz member (numpy.savez stores array ``x`` as ``x.npy``)."""
    return member[:-4] if member.endswith(".npy") else member


def read_npz(path: Path, max_elements: int, max_bytes: int) -> dict[str, np.ndarray]:
    """The arrays of a .npz, each header checked before its data is read (``max_bytes`` unpacked in all)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise BadArray("bad_npz", "inputs must be a .npz file (numpy.savez), one array per model input") from None
    arrays: dict[str, np.ndarray] = {}
    with archive:
        members = archive.infolist()
        if sum(m.file_size for m in members) > max_bytes:
            raise TooBig("too_large", f"the inputs unpack to more than {max_bytes:,} bytes")
        for member in members:
            name = member_name(member.filename)
            try:
                with archive.open(member) as f:
                    header = read_header(f)
                    check_size(header, member.file_size - f.tell(), max_elements, f"input '{name}'")
                    data = f.read()
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
                raise BadArray("bad_npz", f"input '{name}' could not be read: {err}") from None
            array = np.frombuffer(data, dtype=header.dtype, count=element_count(header.shape))
            arrays[name] = array.reshape(header.shape, order="F" if header.fortran else "C")
    return arrays
