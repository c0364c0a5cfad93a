"""Access control against the real app (httpx ASGITransport) and a real SQLite key store.

Every route except the public ones refuses a missing, invalid, revoked, under-privileged and
out-of-scope key. The routes come from ``app.routes``, so a route added later is covered without
editing this file (and ``test_every_guarded_route_has_an_example`` asks for one example request).
Also: throttling, hashed storage, problem+json on every kind of error, and ``/docs`` from local files.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from api.app import create_app
from api.deps import RequireRole, Role
from api.keys import KeyStore, key_digest
from api.report_service import ReportQuery, ReportService
from api.reporting import SiteKeys
from api.throttle import FailureThrottle
from core.errors import StoreRejected, StoreUnavailable
from core.settings import ApiSettings, InputsSettings, ReportSettings, Settings
from core.stores.sqlite import SqliteStore
from tests.conftest import REPO
from tests.test_kpi_engine import ASSETS

SITE = "cq-demo"  # the first site of config/factory.yaml (the park cq-park)
OTHER_SITE = "cq-east"  # the park's other site: nothing of cq-demo is its
PUBLIC = {
    "/healthz": "load balancers poll it; it shows no data",
    "/docs": "Swagger UI's page; it shows no data",
    "/openapi.json": "the API's description; no data",
}
# The pages for people (api.web) answer a missing or refused key with the sign-in page, not a
# problem document: test_every_page_sends_a_stranger_to_sign_in covers them.
SIGN_IN_PAGES = {"/ui/signin", "/ui/signout"}  # public: the way in and out


def _is_page(path: str) -> bool:
    return path == "/" or path.startswith("/ui/")


PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance"}


def _settings(tmp_path: Path, **api: Any) -> Settings:
    inputs = InputsSettings(path=tmp_path / "inputs.sqlite")
    return Settings(
        assets=REPO / "config" / "factory.yaml",
        api=ApiSettings(**{"reports_dir": tmp_path / "reports", **api}),
        inputs=inputs,
        reports=ReportSettings(keys_dir=tmp_path / "site-keys"),
    )


def _build(tmp_path: Path, **api: Any) -> tuple[FastAPI, KeyStore]:
    keys = KeyStore(tmp_path / "keys.sqlite")
    return create_app(_settings(tmp_path, **api), SqliteStore(tmp_path / "store.sqlite"), ASSETS, keys), keys


def _http_routes(app: FastAPI) -> dict[tuple[str, str], Any]:
    """Every HTTP route of the app, those of included routers too: (method, path) -> route."""
    return {
        (method, route.path): route
        for route in iter_route_contexts(app.routes)
        if route.methods  # a Mount (the docs' static files) has none
        for method in route.methods - {"HEAD"}
    }


def _minimum_role(route: Any) -> Role | None:
    """The role a route asks for, found in its dependency tree (an ``Auditor``/``Manager``/``Admin`` argument)."""
    found: list[Role] = []
    stack = [route.dependant] if hasattr(route, "dependant") else []
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, RequireRole):
            found.append(dependant.call.minimum)
        stack.extend(dependant.dependencies)
    return max(found, key=lambda role: role.rank) if found else None


# The app's routes, read once to parametrise the tests; each test builds its own app.
ROUTES = _http_routes(_build(Path("/nonexistent/never-opened"))[0])
GUARDED = sorted(key for key in ROUTES if key[1] not in PUBLIC and not _is_page(key[1]))
PAGES = sorted(key for key in ROUTES if _is_page(key[1]) and key[1] not in SIGN_IN_PAGES)
BELOW = [
    (method, path, lower)
    for method, path in GUARDED
    if (minimum := _minimum_role(ROUTES[method, path])) is not None
    for lower in Role
    if lower.rank < minimum.rank
]


@dataclass
class Keys:
    store: KeyStore
    secret: dict[str, str] = field(default_factory=dict)  # label -> key
    id: dict[str, str] = field(default_factory=dict)
    entry_id: str = ""  # a business input of SITE
    report_id: str = ""  # an archived report of SITE


@dataclass(frozen=True)
class Example:
    """A request to a route that a park admin may make; ``path`` fills the path's parameters."""

    path: Callable[[Keys], dict[str, str]] = lambda keys: {}
    params: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    content: bytes | None = None  # a body that is not JSON, sent with ``headers``
    headers: dict[str, str] = field(default_factory=dict)


EXAMPLES: dict[tuple[str, str], Example] = {
    ("GET", "/v1/assets"): Example(),
    ("GET", "/v1/kpi"): Example(params={"scope": "line-a"}),
    ("GET", "/v1/keys"): Example(),
    ("POST", "/v1/keys"): Example(json={"name": "new auditor", "role": "auditor", "scope": SITE}),
    ("DELETE", "/v1/keys/{key_id}"): Example(path=lambda keys: {"key_id": keys.id["site auditor"]}),
    ("GET", "/v1/inputs"): Example(params={"site": SITE}),
    ("GET", "/v1/inputs/{entry_id}"): Example(path=lambda keys: {"entry_id": keys.entry_id}),
    ("GET", "/v1/inputs/{entry_id}/history"): Example(path=lambda keys: {"entry_id": keys.entry_id}),
    ("POST", "/v1/inputs"): Example(
        json={"site": SITE, "kind": "headcount", "period_start": "2026-01-01", "period_end": "2026-02-01", "value": 48}
    ),
    ("POST", "/v1/inputs/{entry_id}/versions"): Example(
        path=lambda keys: {"entry_id": keys.entry_id}, json={"value": 395}
    ),
    ("DELETE", "/v1/inputs/{entry_id}"): Example(path=lambda keys: {"entry_id": keys.entry_id}, params={"reason": "r"}),
    ("GET", "/v1/reports"): Example(),
    ("POST", "/v1/reports"): Example(
        json={
            "scope": SITE,
            "scheme": "cq-digital-workshop",
            "assessment_start": "2026-01-01",
            "assessment_end": "2026-02-01",
        }
    ),
    ("GET", "/v1/reports/{archive_id}"): Example(path=lambda keys: {"archive_id": keys.report_id}),
    ("GET", "/v1/reports/{archive_id}.{fmt}"): Example(path=lambda keys: {"archive_id": keys.report_id, "fmt": "json"}),
    ("POST", "/v1/inputs/csv"): Example(
        content=f"site,kind,period_start,period_end,value\n{SITE},water_intake,2026-01-01,2026-02-01,710\n".encode(),
        headers={"Content-Type": "text/csv"},
    ),
}


def _url(path: str, values: dict[str, str]) -> str:
    # Path parameters not given are filled with a well-formed dummy: authentication comes before them.
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], "0123456789ab"), path)


@pytest.fixture
async def app_and_keys(tmp_path: Path) -> tuple[FastAPI, Keys]:
    app, store = _build(tmp_path)
    keys = Keys(store)
    for label, role, site in [
        ("park admin", Role.ADMIN, None),
        ("park manager", Role.MANAGER, None),
        ("park auditor", Role.AUDITOR, None),
        ("site auditor", Role.AUDITOR, SITE),
        ("other site admin", Role.ADMIN, OTHER_SITE),
        ("revoked admin", Role.ADMIN, None),
    ]:
        new = store.create(label, role, site, "test")
        keys.secret[label], keys.id[label] = new.secret, new.key.id
    store.revoke(keys.id["revoked admin"])
    entry = app.state.context.inputs.add(
        SITE, "operating_cost", date(2026, 1, 1), date(2026, 2, 1), 392.5, entered_by="t"
    )
    keys.entry_id = entry.entry_id
    SiteKeys(tmp_path / "site-keys").generate(SITE)
    service: ReportService = app.state.report_service
    keys.report_id = await service.generate(
        ReportQuery(SITE, "cq-digital-workshop", (date(2026, 1, 1), date(2026, 2, 1)), None, "en")
    )
    return app, keys


@pytest.fixture
async def client(app_and_keys: tuple[FastAPI, Keys]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_and_keys[0])
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


@pytest.fixture
def keys(app_and_keys: tuple[FastAPI, Keys]) -> Keys:
    return app_and_keys[1]


async def _call(
    client: httpx.AsyncClient, method: str, path: str, keys: Keys, key: str | None, example: Example | None = None
) -> httpx.Response:
    example = example or Example()
    headers = {**example.headers, **({"X-API-Key": key} if key is not None else {})}
    url = _url(path, example.path(keys))
    if example.content is not None:
        return await client.request(method, url, params=example.params, content=example.content, headers=headers)
    return await client.request(method, url, params=example.params, json=example.json, headers=headers)


def _assert_problem(response: httpx.Response, status: int, type_suffix: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert isinstance(body["detail"], str) and len(body["detail"]) > 20
    if type_suffix is not None:
        assert body["type"].endswith(f":{type_suffix}"), body
    return body


def test_the_route_list_is_read_from_the_app() -> None:
    assert {("GET", "/v1/kpi"), ("GET", "/v1/assets"), ("POST", "/v1/keys")} <= set(GUARDED)
    assert {path for _, path in ROUTES} >= PUBLIC.keys()


@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_every_guarded_route_asks_for_a_role(method: str, path: str) -> None:
    assert _minimum_role(ROUTES[method, path]) is not None, f"{method} {path} has no Auditor/Manager/Admin argument"


@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_every_guarded_route_has_an_example(method: str, path: str) -> None:
    assert (method, path) in EXAMPLES, f"add an example request for {method} {path} to EXAMPLES"


@pytest.mark.parametrize(("method", "path"), GUARDED)
async def test_a_missing_key_is_refused(client: httpx.AsyncClient, keys: Keys, method: str, path: str) -> None:
    body = _assert_problem(await _call(client, method, path, keys, None), 401, "missing-key")
    assert "X-API-Key" in body["detail"]


@pytest.mark.parametrize(("method", "path"), GUARDED)
@pytest.mark.parametrize(
    "presented",
    ["fk_0123456789ab_" + "A" * 43, "not-a-key", "park admin+tampered"],
    ids=["unknown-id", "malformed", "wrong-secret"],
)
async def test_an_invalid_key_is_refused(
    client: httpx.AsyncClient, keys: Keys, method: str, path: str, presented: str
) -> None:
    if presented == "park admin+tampered":
        real = keys.secret["park admin"]
        presented = real[:-1] + ("A" if real[-1] != "A" else "B")  # right id, secret off by one character
    response = await _call(client, method, path, keys, presented)
    _assert_problem(response, 401, "invalid-key")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), GUARDED)
async def test_a_revoked_key_is_refused(client: httpx.AsyncClient, keys: Keys, method: str, path: str) -> None:
    body = _assert_problem(await _call(client, method, path, keys, keys.secret["revoked admin"]), 401, "revoked-key")
    assert keys.id["revoked admin"] in body["detail"] and "revoked" in body["detail"]


@pytest.mark.parametrize(("method", "path", "role"), BELOW)
async def test_an_under_privileged_key_is_refused(
    client: httpx.AsyncClient, keys: Keys, method: str, path: str, role: Role
) -> None:
    body = _assert_problem(await _call(client, method, path, keys, keys.secret[f"park {role}"]), 403, "role-too-low")
    assert f"has the {role} role" in body["detail"]


@pytest.mark.parametrize(("method", "path"), GUARDED)
async def test_an_out_of_scope_key_is_refused(client: httpx.AsyncClient, keys: Keys, method: str, path: str) -> None:
    example = EXAMPLES[method, path]
    allowed = await _call(client, method, path, keys, keys.secret["park admin"], example)
    assert allowed.status_code < 300, allowed.text  # the example itself is fine for the park
    if (method, path) == ("GET", "/v1/keys"):
        # Listing filters instead of refusing: another site's admin sees none of these keys.
        listed = await _call(client, method, path, keys, keys.secret["other site admin"], example)
        assert [k["name"] for k in listed.json()] == ["other site admin"]
        return
    if (method, path) == ("GET", "/v1/reports"):
        # So does the report archive: another site's key sees none of SITE's reports.
        assert [r["id"] for r in allowed.json()["reports"]] == [keys.report_id]
        listed = await _call(client, method, path, keys, keys.secret["other site admin"], example)
        assert listed.json() == {"reports": []}
        return
    if (method, path) == ("GET", "/v1/assets"):
        # The tree filters too: another site's key sees the park with its own site only.
        tree = await _call(client, method, path, keys, keys.secret["other site admin"], example)
        assert [s["id"] for s in tree.json()["park"]["sites"]] == [OTHER_SITE]
        return
    refused = await _call(client, method, path, keys, keys.secret["other site admin"], example)
    _assert_problem(refused, 403, "out-of-scope")


@pytest.mark.parametrize(("method", "path"), PAGES)
async def test_every_page_sends_a_stranger_to_sign_in(
    client: httpx.AsyncClient, keys: Keys, method: str, path: str
) -> None:
    # A browser's key is the sign-in cookie; no cookie, a wrong one or a revoked one: the sign-in page.
    url = _url(path, {"archive_id": keys.report_id})
    form = {
        "scope": SITE,
        "scheme": "cq-digital-workshop",
        "assessment_first": "2026-01-01",
        "assessment_last": "2026-01-31",
    }
    for cookie in (None, "fk_0123456789ab_" + "A" * 43, keys.secret["revoked admin"]):
        client.cookies.clear()
        if cookie is not None:
            client.cookies.set("factory_key", cookie)
        response = await client.request(method, url, data=form if method == "POST" else None)
        assert response.status_code == 303, (cookie, response.text)
        assert response.headers["location"].startswith("/ui/signin")
    client.cookies.set("factory_key", keys.secret["park auditor"])
    signed_in = await client.request(method, url, data=form if method == "POST" else None)
    assert signed_in.status_code in (200, 303) and not signed_in.headers.get("location", "").startswith("/ui/signin")


def test_every_page_is_a_page() -> None:
    assert {("GET", "/"), ("GET", "/ui/overview"), ("GET", "/ui/reports"), ("POST", "/ui/reports")} <= set(PAGES)


async def test_a_site_key_reads_its_own_site(client: httpx.AsyncClient, keys: Keys) -> None:
    key = {"X-API-Key": keys.secret["site auditor"]}
    assert [s["id"] for s in (await client.get("/v1/assets", headers=key)).json()["park"]["sites"]] == [SITE]
    assert (await client.get("/v1/kpi", params={"scope": "cnc-01"}, headers=key)).status_code == 200


async def test_kpi_of_an_unknown_scope_is_404_and_of_another_site_403(client: httpx.AsyncClient, keys: Keys) -> None:
    unknown = await client.get("/v1/kpi", params={"scope": "line-z"}, headers={"X-API-Key": keys.secret["park admin"]})
    assert "'line-z'" in _assert_problem(unknown, 404, "unknown-scope")["detail"]
    other = await client.get(
        "/v1/kpi", params={"scope": "cnc-01"}, headers={"X-API-Key": keys.secret["other site admin"]}
    )
    body = _assert_problem(other, 403, "out-of-scope")
    assert f"site {SITE!r}" in body["detail"] and OTHER_SITE in body["detail"]


async def test_revocation_holds_from_the_next_request(client: httpx.AsyncClient, keys: Keys) -> None:
    key = {"X-API-Key": keys.secret["park auditor"]}
    assert (await client.get("/v1/assets", headers=key)).status_code == 200
    keys.store.revoke(keys.id["park auditor"])  # as `factory keys revoke` does, from outside the app
    _assert_problem(await client.get("/v1/assets", headers=key), 401, "revoked-key")


async def test_an_admin_creates_lists_and_revokes_keys(client: httpx.AsyncClient, keys: Keys) -> None:
    admin = {"X-API-Key": keys.secret["park admin"]}
    created = await client.post("/v1/keys", json={"name": "line lead", "role": "manager", "scope": SITE}, headers=admin)
    assert created.status_code == 201
    new = created.json()
    assert new["key"]["role"] == "manager" and new["key"]["scope"] == SITE
    assert (await client.get("/v1/assets", headers={"X-API-Key": new["secret"]})).status_code == 200
    listed = (await client.get("/v1/keys", headers=admin)).json()
    assert new["key"]["id"] in {k["id"] for k in listed}
    assert not any("secret" in k for k in listed)
    revoked = await client.delete(f"/v1/keys/{new['key']['id']}", headers=admin)
    assert revoked.json()["revoked_at"] is not None
    _assert_problem(await client.get("/v1/assets", headers={"X-API-Key": new["secret"]}), 401, "revoked-key")
    narrow = await client.post("/v1/keys", json={"name": "x", "role": "auditor", "scope": "line-a"}, headers=admin)
    assert "lies in site 'cq-demo'" in _assert_problem(narrow, 404, "unknown-scope")["detail"]
    gone = await client.delete("/v1/keys/0123456789ab", headers=admin)
    _assert_problem(gone, 404)


async def test_wrong_keys_are_throttled_per_address(tmp_path: Path) -> None:
    app, store = _build(tmp_path, throttle_failures=3, throttle_window_s=2.0)
    good = store.create("auditor", Role.AUDITOR, None, "test").secret
    attacker = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("192.0.2.7", 4000)), base_url="http://t"
    )
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("192.0.2.8", 4000)), base_url="http://t")
    async with attacker, other:
        for n in range(3):
            wrong = await attacker.get("/v1/assets", headers={"X-API-Key": f"fk_0123456789ab_{n:043d}"})
            assert wrong.status_code == 401
        throttled = await attacker.get("/v1/assets", headers={"X-API-Key": good})  # even the right key
        body = _assert_problem(throttled, 429, "throttled")
        assert 1 <= int(throttled.headers["Retry-After"]) <= 2 and body["retry_after_s"] >= 1
        assert "3 wrong API keys" in body["detail"]
        assert (await other.get("/v1/assets", headers={"X-API-Key": good})).status_code == 200
        assert (await attacker.get("/v1/assets")).status_code == 401  # no key is no guess: not counted
        await asyncio.sleep(2.05)
        assert (await attacker.get("/v1/assets", headers={"X-API-Key": good})).status_code == 200


def test_the_throttle_forgets_old_failures_and_the_least_recent_clients() -> None:
    now = [0.0]
    throttle = FailureThrottle(max_failures=2, window_s=10, max_clients=3, clock=lambda: now[0])
    throttle.record_failure("a")
    now[0] = 6
    throttle.record_failure("a")
    assert throttle.retry_after("a") == 4  # the first failure leaves the window at t=10
    now[0] = 10
    assert throttle.retry_after("a") is None  # one failure left in the window
    for client in "bcd":
        throttle.record_failure(client)
    assert len(throttle) == 3  # "a", heard from least recently, was forgotten
    throttle.record_failure("b")
    assert throttle.retry_after("b") is not None and throttle.retry_after("a") is None


def test_keys_are_stored_only_as_hashes_in_a_private_file(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    secrets = [store.create(f"key {n}", Role.ADMIN, None, "test").secret for n in range(3)]
    store.revoke(store.list_keys()[0].id)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("keys.sqlite")]
    raw = b"".join(p.read_bytes() for p in files)  # the database, its WAL and shared memory
    for secret in secrets:
        random_part = secret.split("_", 2)[2]  # fk_<id>_<secret>: the secret itself may contain "_"
        assert random_part.encode() not in raw and secret.encode() not in raw
    with sqlite3.connect(tmp_path / "keys.sqlite") as conn:
        stored = dict(conn.execute("SELECT id, key_sha256 FROM api_keys").fetchall())
    for secret in secrets:
        assert stored[secret.split("_")[1]] == key_digest(secret) == hashlib.sha256(secret.encode()).digest()
    assert stat.S_IMODE((tmp_path / "keys.sqlite").stat().st_mode) == 0o600


def test_a_key_has_256_bits_of_secret_and_an_id_to_find_it(tmp_path: Path) -> None:
    new = KeyStore(tmp_path / "keys.sqlite").create("k", Role.AUDITOR, SITE, "test")
    prefix, key_id, secret = new.secret.split("_", 2)
    assert (prefix, key_id) == ("fk", new.key.id)
    assert len(secret) == 43  # token_urlsafe(32): 32 random bytes, base64url without padding


async def test_every_kind_of_error_is_problem_json(tmp_path: Path) -> None:
    app, store = _build(tmp_path)
    key = {"X-API-Key": store.create("admin", Role.ADMIN, None, "test").secret}

    @app.get("/test/raise/{kind}")
    async def _raise(kind: str) -> None:  # test-only routes: what a failing store or a bug looks like
        if kind == "unavailable":
            raise StoreUnavailable("connection refused by 10.0.0.9:8086")
        if kind == "rejected":
            raise StoreRejected("400 bad query")
        raise RuntimeError("a bug with internals /srv/secret/path")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        _assert_problem(await client.get("/v1/nothing-here", headers=key), 404)
        _assert_problem(await client.put("/v1/assets", headers=key), 405)
        invalid = _assert_problem(await client.get("/v1/kpi", params={"start": "yesterday"}, headers=key), 422)
        assert {tuple(e["loc"]) for e in invalid["errors"]} == {("query", "scope"), ("query", "start")}
        assert "query parameter 'scope'" in invalid["detail"]
        unavailable = await client.get("/test/raise/unavailable")
        assert "10.0.0.9" not in _assert_problem(unavailable, 503, "store-unavailable")["detail"]
        assert unavailable.headers["Retry-After"] == "30"
        _assert_problem(await client.get("/test/raise/rejected"), 502, "store-error")
        crash = await client.get("/test/raise/bug")
        assert "/srv/secret" not in _assert_problem(crash, 500, "internal-error")["detail"]


async def test_an_unreadable_key_store_is_503_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "keys.sqlite").mkdir()  # a directory where the file should be
    app, _ = _build(tmp_path)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        response = await client.get("/v1/assets", headers={"X-API-Key": "fk_0123456789ab_" + "A" * 43})
    _assert_problem(response, 503, "key-store-unavailable")


async def test_openapi_documents_problem_json_for_errors(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    problem = schema["components"]["schemas"]["ProblemPublic"]
    assert set(problem["required"]) == PROBLEM_FIELDS
    kpi = schema["paths"]["/v1/kpi"]["get"]["responses"]
    for code in ("401", "403", "404", "429", "500", "503"):
        assert kpi[code]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemPublic"}}
        }
    assert kpi["422"]["content"]["application/problem+json"]["schema"]["$ref"].endswith("ValidationProblemPublic")
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    security = schema["components"]["securitySchemes"]
    assert {s.get("name") for s in security.values()} >= {"X-API-Key", "factory_key"}


async def test_docs_page_is_public_and_loads_only_local_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(r"url: ?'([^']+)'", page.text)
    assert len(urls) >= 3, page.text
    assert "http://" not in page.text and "https://" not in page.text, "the page names a remote address"
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        assert (await client.get(url)).status_code == 200, url
    assert '"validatorUrl": null' in page.text  # no badge fetched from validator.swagger.io
    assert (await client.get("/redoc")).status_code == 404
