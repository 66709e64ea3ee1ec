"""Service settings, read from the environment so that every uvicorn worker process sees the same ones.

`onnx-workbench serve` turns its options into these environment variables before starting uvicorn;
tests build a `Settings` directly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

GIB = 1 << 30
ENV_PREFIX = "ONNX_WORKBENCH_"


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(ENV_PREFIX + name, "").strip()
    if not raw:
        return default
    try:
        return int(float(raw))
    except ValueError:
        raise SystemExit(f"onnx-workbench: {ENV_PREFIX}{name} must be a number, not '{raw}'") from None


@dataclass(frozen=True)
class Settings:
    """Everything configurable about the service; defaults suit one machine with a local data folder."""

    data_dir: Path = Path("data")
    max_upload_bytes: int = 4 * GIB  # the request body of an upload
    # What one upload may become on disk once its zips are unpacked: bytes and files (zip members and
    # multipart files) in all, counted as they are written. from_env defaults the bytes to the upload limit,
    # so that a zipped upload never takes more disk than the largest plain one could.
    max_unpacked_bytes: int = 4 * GIB
    max_upload_files: int = 10_000
    # ...and at most this many times the bytes received, once over unpack_ratio_free_bytes. Real weights
    # pack about 1.1:1, and a model with large zero tensors stays far below 100:1 because its real weights
    # dominate the zip; only padding of zeros (a zip bomb) goes beyond. Below the free size any ratio passes,
    # so that a small model of zeros zips fine, and a few-KB request can leave at most that much on disk;
    # a model that is huge and nearly all zeros can be sent unzipped.
    max_unpack_ratio: int = 100
    unpack_ratio_free_bytes: int = 256 << 20
    max_tensor_upload_bytes: int = 1 * GIB  # PUT .npy and .npz run inputs: they are held in memory
    max_json_body_bytes: int = 64 << 20  # any body a route does not stream (JSON edits): read whole into memory
    session_ttl_seconds: int = 7 * 24 * 3600
    token: str | None = None
    cache_sessions: int = 32  # open documents kept per process...
    cache_bytes: int = 8 * GIB  # ...and their model files' size in all (weights in external files not counted)
    snapshot_every: int = 200  # log lines between snapshots
    snapshot_after_seconds: float = 5.0  # or sooner, when replaying the lines since would take this long
    max_run_elements: int = 1 << 28  # per run input and per batch of an input of quant data, before allocating
    sweep_interval_seconds: int = 3600

    @classmethod
    def from_env(cls) -> "Settings":
        token = os.environ.get(ENV_PREFIX + "TOKEN") or None
        max_upload_bytes = _int_env("MAX_UPLOAD_BYTES", cls.max_upload_bytes)
        return cls(
            data_dir=Path(os.environ.get(ENV_PREFIX + "DATA") or "data"),
            max_upload_bytes=max_upload_bytes,
            max_unpacked_bytes=_int_env("MAX_UNPACKED_BYTES", max_upload_bytes),
            max_upload_files=max(1, _int_env("MAX_UPLOAD_FILES", cls.max_upload_files)),
            max_unpack_ratio=max(1, _int_env("MAX_UNPACK_RATIO", cls.max_unpack_ratio)),
            unpack_ratio_free_bytes=_int_env("UNPACK_RATIO_FREE_BYTES", cls.unpack_ratio_free_bytes),
            max_tensor_upload_bytes=_int_env("MAX_TENSOR_UPLOAD_BYTES", cls.max_tensor_upload_bytes),
            max_json_body_bytes=_int_env("MAX_JSON_BODY_BYTES", cls.max_json_body_bytes),
            session_ttl_seconds=_int_env("SESSION_TTL_SECONDS", cls.session_ttl_seconds),
            token=token,
            cache_sessions=max(1, _int_env("CACHE_SESSIONS", cls.cache_sessions)),
            cache_bytes=_int_env("CACHE_BYTES", cls.cache_bytes),
            snapshot_every=max(1, _int_env("SNAPSHOT_EVERY", cls.snapshot_every)),
            max_run_elements=max(1, _int_env("MAX_RUN_ELEMENTS", cls.max_run_elements)),
            sweep_interval_seconds=max(1, _int_env("SWEEP_INTERVAL_SECONDS", cls.sweep_interval_seconds)),
        )
