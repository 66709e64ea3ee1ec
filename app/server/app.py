"""The FastAPI application factory: settings, session store, job runner, analyses, middleware, routes."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware

from .errors import hide_server_folder, install_error_handlers
from .job_kinds import KINDS
from .jobs import JobRunner, LocalJobRunner
from .middleware import BodyLimit, SecurityHeaders, TokenAuth, UnexpectedErrors
from .openapi_links import add_links
from .routes import ROUTERS
from .schemas.common import Health
from .services.quant_analyses import QuantAnalyses
from .session_store import LocalSessionStore
from .settings import Settings

UNCOMPRESSED = ("application/octet-stream", "application/zip", "text/event-stream")

try:
    VERSION = version("onnx-workbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; with no settings they come from the environment (how uvicorn workers start it)."""
    settings = settings or Settings.from_env()
    hide_server_folder(settings.data_dir, "")  # error messages show paths relative to the data folder
    store = LocalSessionStore(settings)
    jobs = _job_runner(store, settings)
    stop = threading.Event()

    def sweeper() -> None:
        while not stop.wait(settings.sweep_interval_seconds):
            store.sweep()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store.sweep()
        thread = threading.Thread(target=sweeper, name="session-sweeper", daemon=True)
        thread.start()
        yield
        stop.set()
        jobs.shutdown()

    app = FastAPI(
        title="onnx-workbench",
        version=VERSION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Edit ONNX graphs for NPUs: private sessions, atomic edits with undo, static shapes. "
        'Every error is {"error": {"code", "message", "details"}}.',
    )
    app.state.settings = settings
    app.state.store = store
    app.state.jobs = jobs
    app.state.analyses = QuantAnalyses(store, jobs, settings.max_run_elements)  # deps.py hands them to routes
    install_error_handlers(app)
    # models, tensors and event streams pass uncompressed: weights do not compress, and gzip would stall a stream
    app.add_middleware(GZipMiddleware, minimum_size=2048, exclude_content_types=UNCOMPRESSED)
    app.add_middleware(BodyLimit, json_limit=settings.max_json_body_bytes, stream_limit=settings.max_upload_bytes)
    app.add_middleware(TokenAuth, token=settings.token)
    app.add_middleware(UnexpectedErrors)  # it sees every error the middleware inside lets through
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, errors included
    for router in ROUTERS:
        app.include_router(router)

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            app.openapi_schema = add_links(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    if settings.token:
        _declare_bearer(app)  # on top of the links

    @app.get("/healthz", response_model=Health, tags=["service"], summary="Liveness: the process answers")
    def healthz() -> dict[str, object]:
        return {"status": "ok", "version": VERSION, "pid": os.getpid()}

    return app


def _job_runner(store: LocalSessionStore, settings: Settings) -> JobRunner:
    """Celery workers when a broker is set (celery_jobs.py), else threads of this process."""
    if settings.job_broker:
        from .celery_jobs import CeleryJobRunner

        return CeleryJobRunner(store.root, store.session_dir, KINDS, settings.job_broker, settings)
    return LocalJobRunner(store.root, store.session_dir, KINDS)


def _declare_bearer(app: FastAPI) -> None:
    """The OpenAPI description says that /api needs the bearer token, so that /docs can send it;
    TokenAuth is what enforces it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = app.openapi_schema
        if schema is None:
            schema = build()  # FastAPI's, which keeps it as app.openapi_schema
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearerToken": {"type": "http", "scheme": "bearer", "description": "the value of ONNX_WORKBENCH_TOKEN"}
            }
            for path, operations in schema["paths"].items():
                if path.startswith("/api/"):
                    for operation in operations.values():
                        operation["security"] = [{"bearerToken": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
