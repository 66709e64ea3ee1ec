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
    max_upload_bytes: int = 4 * GIB
    max_tensor_upload_bytes: int = 1 * GIB  # PUT .npy and .npz run inputs: they are held in memory
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
        return cls(
            data_dir=Path(os.environ.get(ENV_PREFIX + "DATA") or "data"),
            max_upload_bytes=_int_env("MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            max_tensor_upload_bytes=_int_env("MAX_TENSOR_UPLOAD_BYTES", cls.max_tensor_upload_bytes),
            session_ttl_seconds=_int_env("SESSION_TTL_SECONDS", cls.session_ttl_seconds),
            token=token,
            cache_sessions=max(1, _int_env("CACHE_SESSIONS", cls.cache_sessions)),
            cache_bytes=_int_env("CACHE_BYTES", cls.cache_bytes),
            snapshot_every=max(1, _int_env("SNAPSHOT_EVERY", cls.snapshot_every)),
            sweep_interval_seconds=max(1, _int_env("SWEEP_INTERVAL_SECONDS", cls.sweep_interval_seconds)),
        )
