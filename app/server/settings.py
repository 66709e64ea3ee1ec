"""Service settings, read from the environment so that every uvicorn worker process sees the same ones.

`onnx-workbench serve` turns its options into these environment variables before starting uvicorn, and
`Settings.from_env()` reads them: each field from ONNX_WORKBENCH_<FIELD> (the data folder from
ONNX_WORKBENCH_DATA). Tests build a `Settings` directly, which reads no environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

GIB = 1 << 30
ENV_PREFIX = "ONNX_WORKBENCH_"


def _number(minimum: int | None = None) -> BeforeValidator:
    """An environment value as an int: "8e9" is 8,000,000,000, and below `minimum` is raised to it."""

    def parse(value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        try:
            number = int(float(value.strip()))
        except ValueError:
            raise SystemExit(
                f"onnx-workbench: {ENV_PREFIX}{(info.field_name or '').upper()} must be a number, not '{value.strip()}'"
            ) from None
        return number if minimum is None else max(minimum, number)

    return BeforeValidator(parse)


Number = Annotated[int, _number()]
AtLeastOne = Annotated[int, _number(1)]


class Settings(BaseSettings):
    """Everything configurable about the service; defaults suit one machine with a local data folder."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, validate_by_name=True)

    data_dir: Path = Field(default=Path("data"), validation_alias=ENV_PREFIX + "DATA")
    max_upload_bytes: Number = 4 * GIB  # the request body of an upload
    # What one upload may become on disk once its zips are unpacked: bytes and files (zip members and
    # multipart files) in all, counted as they are written. from_env defaults the bytes to the upload limit,
    # so that a zipped upload never takes more disk than the largest plain one could.
    max_unpacked_bytes: Number = 4 * GIB
    max_upload_files: AtLeastOne = 10_000
    # ...and at most this many times the bytes received, once over unpack_ratio_free_bytes. Real weights
    # pack about 1.1:1, and a model with large zero tensors stays far below 100:1 because its real weights
    # dominate the zip; only padding of zeros (a zip bomb) goes beyond. Below the free size any ratio passes,
    # so that a small model of zeros zips fine, and a few-KB request can leave at most that much on disk;
    # a model that is huge and nearly all zeros can be sent unzipped.
    max_unpack_ratio: AtLeastOne = 100
    unpack_ratio_free_bytes: Number = 256 << 20
    max_tensor_upload_bytes: Number = 1 * GIB  # PUT .npy and .npz run inputs: they are held in memory
    max_json_body_bytes: Number = 64 << 20  # any body a route does not stream (JSON edits): read whole into memory
    session_ttl_seconds: Number = 7 * 24 * 3600
    token: str | None = None
    cache_sessions: AtLeastOne = 32  # open documents kept per process...
    cache_bytes: Number = 8 * GIB  # ...and their model files' size in all (weights in external files not counted)
    snapshot_every: AtLeastOne = 200  # log lines between snapshots
    snapshot_after_seconds: float = 5.0  # or sooner, when replaying the lines since would take this long
    max_run_elements: AtLeastOne = 1 << 28  # per run input and per batch of an input of quant data, before allocating
    sweep_interval_seconds: AtLeastOne = 3600
    # Distributed jobs (celery_jobs.py): with a broker, jobs go to `onnx-workbench worker` processes
    job_broker: str | None = None  # redis://HOST:6379/0; unset: jobs run on threads of the API process
    job_concurrency: AtLeastOne = 1  # jobs one worker runs at once (a pool process each)
    job_heartbeat_seconds: float = 5.0  # how often a worker writes a running job's heartbeat; 4 missed: it died
    job_visibility_seconds: float = 60.0  # Redis hands a job not acknowledged this long to another worker

    reads_environment: ClassVar[bool] = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Built directly, the settings are exactly what is passed; `from_env` reads the environment only."""
        return (env_settings,) if cls.reads_environment else (init_settings,)

    @classmethod
    def from_env(cls) -> Settings:
        """The settings of the ONNX_WORKBENCH_* environment variables (how every uvicorn worker starts)."""
        return _FromEnvironment()


class _FromEnvironment(Settings):
    """`Settings` read from the environment: blank variables count as unset, and the unpacked-bytes limit
    follows the upload limit unless it is set itself."""

    reads_environment: ClassVar[bool] = True

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        if "max_unpacked_bytes" not in data and "max_upload_bytes" in data:
            data["max_unpacked_bytes"] = data["max_upload_bytes"]
        return data
