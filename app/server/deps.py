"""What routes get injected: the app's settings, session store, job runner and quantization analyses, and
the session a route works on. `create_app` builds each once and keeps it on `app.state`; this is the
only module that reads it there, so a route names what it needs in its signature.

`OpenSession` holds the session's lock while the route function runs (not while the answer is sent). A
dependency runs before the route's own parameters are checked, so only routes whose other parameters
cannot be invalid (no body, no typed query) use it: elsewhere an unknown session would be answered
404 before an invalid parameter 422, and the route opens the session itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from .jobs import JobRunner
from .services.quant_analyses import QuantAnalyses
from .session_handle import SessionHandle
from .session_store import SessionStore
from .settings import Settings


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _store(request: Request) -> SessionStore:
    return request.app.state.store


def _jobs(request: Request) -> JobRunner:
    return request.app.state.jobs


def _analyses(request: Request) -> QuantAnalyses:
    return request.app.state.analyses


AppSettings = Annotated[Settings, Depends(_settings)]
Store = Annotated[SessionStore, Depends(_store)]
Jobs = Annotated[JobRunner, Depends(_jobs)]
Analyses = Annotated[QuantAnalyses, Depends(_analyses)]


def _open_session(session_id: str, store: Store) -> Iterator[SessionHandle]:
    with store.open(session_id) as handle:
        yield handle


OpenSession = Annotated[SessionHandle, Depends(_open_session, scope="function")]
