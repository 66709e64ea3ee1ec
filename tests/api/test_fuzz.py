"""Property-based runs of schemathesis against the OpenAPI spec: whatever a client sends, never a 5xx.

Stateless: path parameters named session_id point at a real session most of the time, so generated
edit bodies, tensor names and uploads reach the engine instead of stopping at "unknown session".

Stateful: scenarios of calls chained by the spec's links (app/server/openapi_links.py): an upload of
a real model, then the routes of the session it opened with its id, versions, node and tensor names
and job ids taken from earlier answers, with generated values for the rest.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import onnx
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import ensure_resource_availability, use_after_free

from app.server.app import create_app
from app.server.settings import Settings
from tests.fixture_models import fixture_path


def _app_on_a_temporary_folder() -> FastAPI:
    data = Path(tempfile.mkdtemp(prefix="onnx-workbench-fuzz-"))
    atexit.register(shutil.rmtree, data, True)
    return create_app(Settings(data_dir=data, max_upload_bytes=8 << 20))


app = _app_on_a_temporary_folder()
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
# schemathesis ends the lifespans of the apps it started after each test, which stops an app's job runner
# for good; the stateful run gets an app of its own whose spec is read without starting it
stateful_app = _app_on_a_temporary_folder()
stateful_schema = schemathesis.openapi.from_dict(stateful_app.openapi())
stateful_schema.app = stateful_app

UPLOAD = "POST /api/sessions"
QUANT = "POST /api/sessions/{session_id}/quant"
EDITS = "POST /api/sessions/{session_id}/edits"
# a CNN with initializers (tensor, histogram, run and quant routes have real weights to work on) and a
# classic-ML model (ai.onnx.ml operators, a sequence-of-maps output)
STATEFUL_MODELS = ("light_resnet50", "logreg_iris")


@schemathesis.check
def use_after_free_but_cancel(ctx, response, case):  # type: ignore[no-untyped-def]
    """use_after_free for every resource but a job: DELETE /api/jobs/{job_id} cancels the job, whose final
    state (cancelled, or failed if it ended first) stays readable, as the API documents."""
    if case.operation.path.startswith("/api/jobs/"):
        return None
    return use_after_free(ctx, response, case)


STATEFUL_CHECKS = [not_a_server_error, use_after_free_but_cancel, ensure_resource_availability]


def _real_session() -> str:
    from fastapi.testclient import TestClient

    path = fixture_path("ppocr_cls_v2")
    with TestClient(app) as client:
        return client.post("/api/sessions", files={"file": (path.name, path.read_bytes())}).json()["id"]


_session: list[str] = []


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_for_any_request(case: schemathesis.Case) -> None:
    if not _session:
        _session.append(_real_session())
    params = case.path_parameters or {}
    if "session_id" in params and case.method != "DELETE" and hash(str(case.body)) % 4:
        params["session_id"] = _session[0]
    case.call_and_validate(checks=[not_a_server_error])


@functools.cache
def _names(model: str) -> dict[str, list[str]]:
    """Node ids (what the routes take) and initializer names of a fixture model."""
    graph = onnx.load(fixture_path(model)).graph
    names = Counter(n.name for n in graph.node)
    nodes = [n.name if n.name and names[n.name] == 1 else "@" + n.output[0] for n in graph.node]
    return {
        "node_id": nodes,
        "name": [t.name for t in graph.initializer],
        "tensor": [t.name for t in graph.initializer],
    }


class StatefulSessions(stateful_schema.as_state_machine()):  # type: ignore[misc]
    """Every upload sends a real fixture model, so the session routes run on a real session. Where no link
    carries a node or tensor name, every other call takes a real one of the session's model instead of the
    generated one, an edit renames a real node and a quantization request asks for random calibration data,
    so that edits apply (and undo and redo have something to do) and jobs run."""

    def setup(self) -> None:
        self.calls = 0
        self.models: dict[str, str] = {}  # session id -> fixture model

    def before_call(self, case: schemathesis.Case) -> None:
        self.calls += 1
        if case.operation.label == UPLOAD:
            case.body = {"file": fixture_path(self._model()).read_bytes()}
            return
        params = case.path_parameters or {}
        model = self.models.get(params.get("session_id", ""))
        if model is None or self.calls % 2:
            return
        for key, generated in params.items():
            if key in ("node_id", "name", "tensor") and _names(model)[key]:
                real = _names(model)[key][len(str(generated)) % len(_names(model)[key])]
                params[key] = real + ".npy" if "/tensors/" in case.operation.path else real
        if case.operation.label == QUANT:
            case.body = {"settings": json.dumps({"random": 2})}
        elif case.operation.label == EDITS and isinstance(case.body, dict):
            node = _names(model)["node_id"][len(str(case.body)) % len(_names(model)["node_id"])]
            case.body = {**case.body, "edits": [{"op": "rename_node", "node": node, "to": f"renamed {self.calls}"}]}

    def after_call(self, response, case) -> None:  # type: ignore[no-untyped-def]
        if case.operation.label == UPLOAD and response.status_code == 201:
            self.models[response.json()["id"]] = self._model()
        super().after_call(response, case)

    def _model(self) -> str:
        return STATEFUL_MODELS[len(self.models) % len(STATEFUL_MODELS)]

    def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:  # type: ignore[no-untyped-def]
        case.validate_response(
            response, checks=STATEFUL_CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder
        )


TestStatefulSessions = StatefulSessions.TestCase
TestStatefulSessions.settings = settings(
    max_examples=40,
    stateful_step_count=12,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
