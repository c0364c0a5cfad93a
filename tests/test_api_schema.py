"""Schemathesis: requests generated from the API's own OpenAPI schema, sent with a park admin key.

Whatever the generated query, body or path (valid ones, and invalid ones: schemathesis's negative
mode), the API answers without a 5xx.
The app is the real one over a real SQLite store and key store, called in-process (ASGI), so
nothing touches the network. Hypothesis runs derandomized with no example database, so
every run tries the same requests.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, reject, settings
from schemathesis.generation.case import Case
from schemathesis.generation.modes import GenerationMode

from api.app import create_app
from api.keys import KeyStore, Role
from core.settings import ApiSettings, InputsSettings, ReportSettings, Settings
from core.stores.sqlite import SqliteStore
from tests.conftest import REPO
from tests.test_kpi_engine import ASSETS, dataset

EXAMPLES = 100  # per operation and mode (9 pairs): ~30 s on 2 cores


def _app(tmp_path: Path, keys: KeyStore, store: SqliteStore) -> FastAPI:
    settings = Settings(
        assets=REPO / "config" / "factory.yaml",
        inputs=InputsSettings(path=tmp_path / "inputs.sqlite"),
        # No signing keys: POST /v1/reports answers 409 before it evaluates (a year's evaluation per example
        # would take the run's time); its evaluation is tested in test_web_reports.
        api=ApiSettings(reports_dir=tmp_path / "reports"),
        reports=ReportSettings(keys_dir=tmp_path / "site-keys"),
    )
    return create_app(settings, store, ASSETS, keys)


# The operations, read once from an app whose files are never opened, to parametrise the test.
_LISTING = schemathesis.openapi.from_asgi(
    "/openapi.json", _app(Path("/nonexistent"), KeyStore("/nonexistent/k"), SqliteStore("/nonexistent/s"))
)
OPERATIONS = [result.ok() for result in _LISTING.get_all_operations()]
CASES = [
    (operation.label, mode)
    for operation in OPERATIONS
    for mode in GenerationMode
    # Negative mode needs something to get wrong: a parameter or a body (GET /healthz has neither).
    if mode == GenerationMode.POSITIVE or {"parameters", "requestBody"} & operation.definition.raw.keys()
]


@pytest.mark.parametrize(("operation", "mode"), CASES, ids=[f"{label} {mode}" for label, mode in CASES])
def test_no_generated_request_makes_the_api_fail(tmp_path: Path, operation: str, mode: GenerationMode) -> None:
    keys = KeyStore(tmp_path / "keys.sqlite")
    admin = {"X-API-Key": keys.create("schemathesis", Role.ADMIN, None, "test").secret}
    store = SqliteStore(tmp_path / "store.sqlite")
    asyncio.run(store.write(dataset()))
    app = _app(tmp_path, keys, store)
    found = schemathesis.openapi.from_asgi("/openapi.json", app).find_operation_by_label(operation)
    assert found is not None, operation
    # Sent with Starlette's (httpx) test client: schemathesis's own ASGI transport is built on requests,
    # which fails here against the urllib3 that another package replaces.
    with TestClient(app, raise_server_exceptions=False) as client:

        @given(case=found.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: Case) -> None:
            request = case.as_transport_kwargs(headers=admin)
            client.cookies.clear()
            client.cookies.update(request.pop("cookies", {}) or {})
            if "data" in request and not isinstance(request["data"], dict):
                request["content"] = request.pop("data")  # raw bytes, as httpx wants them
            if request.get("files"):
                # Multipart fields come as numbers and nulls too; httpx encodes text and bytes only, and
                # fails while the app reads the body (which would look like the app's own failure).
                files = request["files"].items() if isinstance(request["files"], dict) else request["files"]
                request["files"] = [
                    (name, (part[0], part[1] if isinstance(part[1], bytes | str) else json.dumps(part[1]), *part[2:]))
                    for name, part in files
                ]
            try:
                response = client.request(**request)
            except (UnicodeEncodeError, httpx.InvalidURL, httpx.LocalProtocolError):
                reject()  # a request no HTTP client can send (e.g. a header that is not Latin-1)
            assert response.status_code < 500, f"{case.as_curl_command(admin)}\n{response.text}"

        no_server_error()
    asyncio.run(store.close())
