"""``factory grafana push`` against a local HTTP server that records requests and answers as Grafana's API does.

No Grafana server can be installed here (no package, no container engine), so ``FakeGrafana`` below
serves the endpoints the push uses, with Grafana's status codes and response shapes (HTTP API docs,
Grafana 11): data sources by uid, folders, dashboards (``/api/dashboards/db``, stored with ``id`` and
``version`` added, ``meta.folderUid``), alert rules through the provisioning API (404 for an unknown
uid, stored rules returned with ``id``, ``updated`` and ``provenance``), rule groups, and 401
without the service-account token. Like Grafana it keeps more than it was sent (ids, versions,
provenance, defaults inside query models), so a push must compare what it sends, not whole objects.
It records every request, so the tests can say what a push wrote.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from factory.cli import main
from kpi.dashboards.build import ALERT_FOLDER_UID, FOLDER_UID, BuildOptions, build
from kpi.dashboards.push import GrafanaPush, PushError

TOKEN = "glsa_test_service_account_token"
PASSWORD = "read-only-influx-password"
INFLUX_URL = "http://influxdb.plant.example:8086"


class FakeGrafana:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.next_id = 1
        self.lock = threading.Lock()

    def writes(self) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] != "GET"]

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[:3] == ["api", "datasources", "uid"] and method == "GET":
            ds = self.datasources.get(parts[3])
            return (200, ds) if ds else (404, {"message": "Data source not found"})
        if path == "/api/datasources" and method == "POST":
            if any(d["name"] == body["name"] for d in self.datasources.values()):
                return 409, {"message": "data source with the same name already exists"}
            stored = self._datasource(body)
            return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource added", "name": body["name"]}
        if parts[:3] == ["api", "datasources", "uid"] and method == "PUT":
            if parts[3] not in self.datasources:
                return 404, {"message": "Data source not found"}
            stored = self._datasource(body, self.datasources[parts[3]]["id"])
            return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource updated"}
        if parts[:2] == ["api", "folders"] and len(parts) == 3 and method == "GET":
            folder = self.folders.get(parts[2])
            return (200, folder) if folder else (404, {"message": "folder not found", "status": "not-found"})
        if path == "/api/folders" and method == "POST":
            if body["uid"] in self.folders:
                return 409, {"message": "a folder with the same uid already exists"}
            folder = {"id": self._id(), "uid": body["uid"], "title": body["title"], "version": 1}
            self.folders[body["uid"]] = folder
            return 200, folder
        if parts[:2] == ["api", "folders"] and len(parts) == 3 and method == "PUT":
            folder = self.folders[parts[2]]
            folder.update(title=body["title"], version=folder["version"] + 1)
            return 200, folder
        if parts[:3] == ["api", "dashboards", "uid"] and method == "GET":
            stored = self.dashboards.get(parts[3])
            return (200, copy.deepcopy(stored)) if stored else (404, {"message": "Dashboard not found"})
        if path == "/api/dashboards/db" and method == "POST":
            dashboard = dict(body["dashboard"])
            if body.get("folderUid") not in self.folders:
                return 400, {"message": "folder not found"}
            old = self.dashboards.get(dashboard["uid"])
            if old is not None and not body.get("overwrite"):
                return 412, {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"}
            dashboard["id"] = old["dashboard"]["id"] if old else self._id()
            dashboard["version"] = old["dashboard"]["version"] + 1 if old else 1
            self.dashboards[dashboard["uid"]] = {
                "dashboard": dashboard,
                "meta": {"folderUid": body["folderUid"], "slug": dashboard["uid"], "provisioned": False},
            }
            return 200, {
                "id": dashboard["id"],
                "uid": dashboard["uid"],
                "status": "success",
                "version": dashboard["version"],
            }
        if parts[:4] == ["api", "v1", "provisioning", "alert-rules"]:
            return self._rule(method, parts[4] if len(parts) > 4 else None, body)
        if parts[:4] == ["api", "v1", "provisioning", "folder"] and method == "GET":
            folder, group = parts[4], parts[6]
            rules = [r for r in self.rules.values() if r["folderUID"] == folder and r["ruleGroup"] == group]
            if not rules:
                return 404, {"message": "rule group does not exist"}
            return 200, {"title": group, "folderUid": folder, "interval": 60, "rules": rules}
        return 404, {"message": "Not found"}

    def _datasource(self, body: dict[str, Any], ds_id: int | None = None) -> dict[str, Any]:
        stored = {k: v for k, v in body.items() if k != "secureJsonData"}
        stored.update(id=ds_id or self._id(), orgId=1, readOnly=False, basicAuth=False, withCredentials=False)
        stored["typeLogoUrl"] = "public/app/plugins/datasource/influx/img/influxdb_logo.svg"
        stored["secureJsonFields"] = {k: True for k in body.get("secureJsonData", {})} or self.datasources.get(
            body["uid"], {}
        ).get("secureJsonFields", {})
        self.datasources[body["uid"]] = stored
        return stored

    def _rule(self, method: str, uid: str | None, body: Any) -> tuple[int, Any]:
        if method == "GET" and uid is not None:
            rule = self.rules.get(uid)
            return (200, copy.deepcopy(rule)) if rule else (404, None)  # Grafana answers 404 with no body
        if method == "POST":
            if body["folderUID"] not in self.folders:
                return 400, {"message": "invalid alert rule: folder does not exist"}
            if body["uid"] in self.rules:
                return 409, {"message": "conflict"}
            self.rules[body["uid"]] = {
                **_with_defaults(body),
                "id": self._id(),
                "updated": "2026-11-30T01:00:00Z",
                "provenance": "api",
            }
            return 201, self.rules[body["uid"]]
        if method == "PUT" and uid in self.rules:
            self.rules[uid] = {
                **_with_defaults(body),
                "id": self.rules[uid]["id"],
                "updated": "2026-11-30T02:00:00Z",
                "provenance": "api",
            }
            return 200, self.rules[uid]
        return 404, {"message": "Not found"}


def _with_defaults(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule as Grafana keeps it: query models completed with the defaults its editor writes."""
    stored = copy.deepcopy(rule)
    for query in stored["data"]:
        query["model"].setdefault("intervalMs", 1000)
        query["model"].setdefault("maxDataPoints", 43200)
        query["model"].setdefault("hide", False)
        query.setdefault("queryType", "")
    return stored


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            with fake.lock:
                fake.requests.append((self.command, self.path, body))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    status, answer = 401, {"message": "Invalid API key"}
                else:
                    status, answer = fake.handle(self.command, self.path.split("?")[0], body)
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    monkeypatch.setenv("INFLUX_GRAFANA_PASSWORD", PASSWORD)


def test_push_creates_datasource_folder_dashboards_and_alert_rules(
    grafana: tuple[FakeGrafana, str], environment: None, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = grafana
    assert main(["grafana", "push", "--url", url, "--influx-url", INFLUX_URL]) == 0
    assert "12 created, 0 updated, 0 unchanged" in capsys.readouterr().out
    (datasource,) = fake.datasources.values()
    assert datasource["uid"] == "factory-influxdb" and datasource["user"] == "grafana"
    assert datasource["url"] == INFLUX_URL and datasource["jsonData"]["dbName"] == "factory"
    assert datasource["isDefault"] is False  # a user's own default data source stays theirs
    creating = next(body for method, path, body in fake.writes() if path == "/api/datasources")
    assert creating["secureJsonData"] == {"password": PASSWORD}
    assert fake.folders[FOLDER_UID]["title"] == "智能工厂"
    assert set(fake.dashboards) == {d["uid"] for d in build(BuildOptions()).dashboard_json()}
    assert all(d["meta"]["folderUid"] == FOLDER_UID for d in fake.dashboards.values())
    assert fake.folders[ALERT_FOLDER_UID]["title"] == "智能工厂告警"
    assert {r["folderUID"] for r in fake.rules.values()} == {ALERT_FOLDER_UID} and len(fake.rules) == 4
    # the folder exists before anything is put into it
    paths = [path for _, path, _ in fake.writes()]
    assert paths.index("/api/folders") < paths.index("/api/dashboards/db")


def test_a_second_push_changes_nothing(
    grafana: tuple[FakeGrafana, str], environment: None, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = grafana
    assert main(["grafana", "push", "--url", url, "--influx-url", INFLUX_URL]) == 0
    writes = len(fake.writes())
    assert main(["grafana", "push", "--url", url, "--influx-url", INFLUX_URL]) == 0
    assert fake.writes()[writes:] == []
    assert "0 created, 0 updated, 12 unchanged" in capsys.readouterr().out.splitlines()[-1]


def test_push_puts_back_only_what_was_changed_in_grafana(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    bundle = build(BuildOptions())
    GrafanaPush.connect(url, TOKEN, bundle, PASSWORD).run()
    fake.dashboards["factory-energy"]["dashboard"]["title"] = "edited by hand"
    fake.rules["factory-machine-down"]["for"] = "1h"
    writes = len(fake.writes())
    result = GrafanaPush.connect(url, TOKEN, bundle, PASSWORD).run()
    assert result.updated == ["dashboard factory-energy", "alert rule factory-machine-down"]
    assert fake.dashboards["factory-energy"]["dashboard"]["title"] == "能源与碳排放"
    assert fake.dashboards["factory-energy"]["dashboard"]["version"] == 2
    assert fake.rules["factory-machine-down"]["for"] == "1m"
    assert [(m, p) for m, p, _ in fake.writes()[writes:]] == [
        ("POST", "/api/dashboards/db"),
        ("PUT", "/api/v1/provisioning/alert-rules/factory-machine-down"),
    ]


def test_the_english_build_replaces_the_chinese_one(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    GrafanaPush.connect(url, TOKEN, build(BuildOptions(language="zh")), PASSWORD).run()
    result = GrafanaPush.connect(url, TOKEN, build(BuildOptions(language="en")), PASSWORD).run()
    assert result.created == [] and len(result.updated) == 2 + 5 + 4  # folders, dashboards, rules
    assert fake.folders[FOLDER_UID]["title"] == "Smart factory"
    assert fake.folders[ALERT_FOLDER_UID]["title"] == "Smart factory alerts"
    assert fake.dashboards["factory-park-overview"]["dashboard"]["title"] == "Park overview"


def test_the_password_is_sent_again_only_when_asked(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    bundle = build(BuildOptions())
    GrafanaPush.connect(url, TOKEN, bundle, PASSWORD).run()
    writes = len(fake.writes())
    GrafanaPush.connect(url, TOKEN, bundle, "a-new-password", reset_password=True).run()
    ((method, path, body),) = fake.writes()[writes:]
    assert (method, path) == ("PUT", "/api/datasources/uid/factory-influxdb")
    assert body["secureJsonData"] == {"password": "a-new-password"}


def test_a_wrong_token_stops_the_push_with_grafana_s_answer(
    grafana: tuple[FakeGrafana, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = grafana
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_wrong")
    monkeypatch.setenv("INFLUX_GRAFANA_PASSWORD", PASSWORD)
    assert main(["grafana", "push", "--url", url, "--influx-url", INFLUX_URL]) == 1
    assert "datasource: Grafana answered Unauthorized" in capsys.readouterr().err
    assert fake.writes() == []


def test_push_needs_the_token_and_the_password_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    monkeypatch.setenv("INFLUX_GRAFANA_PASSWORD", PASSWORD)
    assert main(["grafana", "push", "--url", "http://127.0.0.1:9", "--influx-url", INFLUX_URL]) == 2
    assert "GRAFANA_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    monkeypatch.delenv("INFLUX_GRAFANA_PASSWORD")
    assert main(["grafana", "push", "--url", "http://127.0.0.1:9", "--influx-url", INFLUX_URL]) == 2
    assert "INFLUX_GRAFANA_PASSWORD" in capsys.readouterr().err


def test_an_unreachable_grafana_is_a_clear_error() -> None:
    push = GrafanaPush.connect("http://127.0.0.1:9", TOKEN, build(BuildOptions()), PASSWORD)
    with pytest.raises(PushError, match="datasource: cannot reach Grafana"):
        push.run()


def test_push_needs_to_know_where_grafana_reaches_influxdb(
    environment: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["grafana", "push", "--url", "http://127.0.0.1:9"]) == 2
    assert "--influx-url" in capsys.readouterr().err


def test_a_dashboard_from_an_older_build_is_replaced_even_where_it_only_had_more(
    grafana: tuple[FakeGrafana, str],
) -> None:
    fake, url = grafana
    bundle = build(BuildOptions())
    GrafanaPush.connect(url, TOKEN, bundle, PASSWORD).run()
    stored = fake.dashboards["factory-machine"]["dashboard"]
    stored["grafanaAddedThis"] = True  # what Grafana keeps besides: still this build, nothing to do
    assert GrafanaPush.connect(url, TOKEN, bundle, PASSWORD).run().updated == []
    stored["timeFrom"] = "1h"  # an older build's key that this build no longer writes
    stored["factoryBuild"] = "0123456789abcdef"
    result = GrafanaPush.connect(url, TOKEN, bundle, PASSWORD).run()
    assert result.updated == ["dashboard factory-machine"]
    assert "timeFrom" not in fake.dashboards["factory-machine"]["dashboard"]
