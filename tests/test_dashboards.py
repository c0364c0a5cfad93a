"""The generated dashboards and alert rules: structure Grafana relies on, both languages complete.

Pure checks of the build (kpi/dashboards); the queries themselves run against a real InfluxDB in
tests/test_dashboards_influx.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from factory.cli import main
from kpi.dashboards.build import DASHBOARDS_PATH, FOLDER_UID, BuildOptions, Bundle, build
from kpi.dashboards.model import DATASOURCE_UID, AlertQuery, AlertRule, Text

REPO = Path(__file__).resolve().parent.parent
UIDS = {
    "factory-park-overview",
    "factory-workshop",
    "factory-machine",
    "factory-energy",
    "factory-certification",
}
BUILT_IN_VARIABLES = {"timeFilter", "__interval", "__interval_ms", "__timeFilter"}


@pytest.fixture(scope="module", params=["zh", "en"])
def bundle(request: pytest.FixtureRequest) -> Bundle:
    return build(BuildOptions(language=request.param))


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard["panels"])


def test_five_dashboards_with_the_issue_s_uids(bundle: Bundle) -> None:
    assert {d["uid"] for d in bundle.dashboard_json()} == UIDS


def test_panel_ids_are_unique_and_grid_positions_never_overlap(bundle: Bundle) -> None:
    for dashboard in bundle.dashboard_json():
        ids = [p["id"] for p in _panels(dashboard)]
        assert len(ids) == len(set(ids)), dashboard["uid"]
        cells: dict[tuple[int, int], str] = {}
        for panel in _panels(dashboard):
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, f"{dashboard['uid']}: {panel['title']} overlaps {cells[(x, y)]}"
                    cells[(x, y)] = panel["title"]


def test_every_datasource_reference_is_the_provisioned_datasource(bundle: Bundle) -> None:
    provisioned = yaml.safe_load(bundle.files["provisioning/datasources/influxdb.yaml"])["datasources"]
    assert [d["uid"] for d in provisioned] == [DATASOURCE_UID]
    for dashboard in bundle.dashboard_json():
        for panel in _panels(dashboard):
            assert panel["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == DATASOURCE_UID and target["rawQuery"]
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"]["uid"] == DATASOURCE_UID
    for rule in bundle.rule_json():
        uids = {d["datasourceUid"] for d in rule["data"]}
        assert uids <= {DATASOURCE_UID, "__expr__"}, rule["uid"]


def _used_variables(text: str) -> set[str]:
    return set(re.findall(r"\$\{?(\w+)", text)) - BUILT_IN_VARIABLES - {"tag_site", "tag_equipment", "tag_signal"}


def test_every_variable_a_query_or_title_uses_is_defined_before_it(bundle: Bundle) -> None:
    for dashboard in bundle.dashboard_json():
        defined: list[str] = []
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                used = _used_variables(variable["query"])
                assert used <= set(defined), f"{dashboard['uid']}: {variable['name']} uses {used - set(defined)}"
            defined.append(variable["name"])
        for panel in _panels(dashboard):
            texts = [
                panel["title"],
                *(t["query"] for t in panel["targets"]),
                *(t.get("alias", "") for t in panel["targets"]),
            ]
            for text in texts:
                used = {v for v in _used_variables(text) if not v.startswith("tag_")}
                assert used <= set(defined), f"{dashboard['uid']}: {panel['title']} uses {used - set(defined)}"
            if "repeat" in panel:
                assert panel["repeat"] in defined


def test_template_variables_run_from_park_down_to_machine() -> None:
    dashboards = {d["uid"]: d for d in build(BuildOptions()).dashboard_json()}

    def names(uid: str) -> list[str]:
        return [v["name"] for v in dashboards[uid]["templating"]["list"]]

    assert names("factory-park-overview") == ["park", "site"]
    assert names("factory-workshop") == ["park", "site", "workshop", "line", "machine"]
    assert names("factory-machine") == ["park", "site", "workshop", "line", "machine"]
    machine = dashboards["factory-machine"]["templating"]["list"][-1]
    assert machine["multi"] is False and machine["includeAll"] is False  # a drill-down is one machine


_TEXT_KEYS = ("title", "description", "alias", "label", "summary", "text", "xField")


def _human_texts(node: Any, key: str = "") -> list[str]:
    """Every string a person reads in Grafana: titles, descriptions, legends, labels, mapped values."""
    if isinstance(node, dict) and key == "renameByName":  # column names shown as headers and axis labels
        return [str(v) for v in node.values()]
    if isinstance(node, dict):
        return [t for k, v in node.items() for t in _human_texts(v, k)]
    if isinstance(node, list):
        return [t for item in node for t in _human_texts(item, key)]
    if isinstance(node, str) and key in _TEXT_KEYS:
        return [node]
    if isinstance(node, str) and key == "unit" and node.startswith("suffix:"):
        return [node.removeprefix("suffix:")]
    return []


# Left in the Chinese build on purpose: template references, Grafana's alert template syntax, the
# standard's name (GB/T 2589), the names of the baseline variables, and instants (a text box shows its value).
_NOT_ENGLISH = re.compile(
    r"\{\{[^}]*\}\}|\$\{?\w+\}?|GB/T \d+|baseline_start|baseline_end|\d{4}-\d\d-\d\dT[\d:]+(Z|[+-]\d\d:\d\d)?"
)


def test_no_english_is_left_in_the_chinese_build() -> None:
    bundle = build(BuildOptions(language="zh"))
    texts = [t for d in bundle.dashboard_json() for t in _human_texts(d)]
    texts += [t for r in bundle.rule_json() for t in _human_texts(r)]
    texts += [bundle.folder_title, bundle.alert_folder_title]
    assert len(texts) > 100
    leftovers = [t for t in texts if re.search(r"[A-Za-z]", _NOT_ENGLISH.sub("", t))]
    assert leftovers == []


def test_both_languages_say_the_same_things_in_the_same_places() -> None:
    zh, en = build(BuildOptions(language="zh")), build(BuildOptions(language="en"))
    for a, b in zip(zh.dashboard_json(), en.dashboard_json(), strict=True):
        assert [p["gridPos"] for p in a["panels"]] == [p["gridPos"] for p in b["panels"]]
        assert [p["targets"][0]["query"] for p in a["panels"]] == [p["targets"][0]["query"] for p in b["panels"]]
        for pa, pb in zip(a["panels"], b["panels"], strict=True):
            assert pa["title"] != pb["title"] or "$" in pa["title"], pa["title"]
            assert pa["description"] and pb["description"]
    assert [r["title"] for r in zh.rule_json()] != [r["title"] for r in en.rule_json()]


def test_indicator_names_are_the_spec_s_chinese_names() -> None:
    texts = [t for d in build(BuildOptions(language="zh")).dashboard_json() for t in _human_texts(d)]
    for name in ("关键工序数控化率", "设备联网率", "综合能耗", "设备综合效率", "数据上传率", "单位产品综合能耗"):
        assert any(name in t for t in texts), name


def test_a_text_without_both_languages_is_refused() -> None:
    with pytest.raises(ValueError, match="both languages"):
        Text("Machine state", "")


def test_an_alert_condition_naming_an_unknown_query_is_refused() -> None:
    query = AlertQuery("coverage", "SELECT 1", 60)
    with pytest.raises(ValueError, match="unknown queries"):
        AlertRule("x", Text("a", "甲"), Text("a", "甲"), Text("a", "甲"), (query,), "$coverag < 1")
    with pytest.raises(ValueError, match="lower case"):
        AlertQuery("A", "SELECT 1", 60)


def test_the_four_alerts_of_the_issue_are_provisioned_in_the_folder(bundle: Bundle) -> None:
    alerting = yaml.safe_load(bundle.files["provisioning/alerting/factory-alerts.yaml"])
    (group,) = alerting["groups"]
    assert group["folder"] == bundle.alert_folder_title != bundle.folder_title  # never the dashboards' title
    assert {r["uid"] for r in group["rules"]} == {
        "factory-machine-down",
        "factory-data-stopped",
        "factory-energy-above-baseline",
        "factory-insufficient-evidence",
    }
    for rule in group["rules"]:
        refs = [d["refId"] for d in rule["data"]]
        assert rule["condition"] in refs and len(refs) == len(set(refs))
        expressions = [d["model"]["expression"] for d in rule["data"] if d["datasourceUid"] == "__expr__"]
        for expression in expressions:
            assert set(re.findall(r"\$\{?(\w+)", expression)) <= set(refs), rule["uid"]


def test_provisioning_never_reads_an_upper_case_variable_except_the_password() -> None:
    """Grafana expands $NAME from its environment in provisioning files: only the datasource's password."""
    for name, text in build(BuildOptions()).files.items():
        if name.endswith(".yaml"):
            found = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)\}?", text))
            assert found <= {"INFLUX_GRAFANA_PASSWORD"}, name


def test_dashboard_provider_reads_the_mounted_dashboards_folder(bundle: Bundle) -> None:
    (provider,) = yaml.safe_load(bundle.files["provisioning/dashboards/factory.yaml"])["providers"]
    assert provider["options"]["path"] == DASHBOARDS_PATH and provider["folderUid"] == FOLDER_UID


def test_queries_name_the_rollup_retention_policy_when_the_rollups_have_one() -> None:
    queries = [
        t["query"]
        for d in build(BuildOptions(rollup_retention_policy="rollups")).dashboard_json()
        for p in d["panels"]
        for t in p["targets"]
    ]
    rollup_queries = [q for q in queries if "kpi_" in q or "certification_rule" in q]
    assert rollup_queries and all(
        '"rollups"."kpi_' in q or '"rollups"."certification_rule"' in q for q in rollup_queries
    )
    assert any('FROM "machine_state"' in q for q in queries)  # raw series stay in the default policy


def test_the_committed_files_are_the_chinese_build(tmp_path: Path) -> None:
    assert main(["grafana", "build", "--check", "--out", str(REPO / "deploy" / "grafana")]) == 0
    assert main(["grafana", "build", "--lang", "en", "--out", str(tmp_path)]) == 0
    english = json.loads((tmp_path / "dashboards" / "factory-park-overview.json").read_text())
    assert english["title"] == "Park overview"
    assert main(["grafana", "build", "--check", "--out", str(tmp_path)]) == 1  # zh against the en files
