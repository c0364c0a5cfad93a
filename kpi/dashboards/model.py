"""Typed dashboards, panels, variables and alert rules, rendered to Grafana's JSON in one language.

Why our own small dataclasses and not a dashboard library: the dashboards use a handful of panel
types with raw InfluxQL targets, and every human-facing word must exist in two languages. A
``Text`` carries both, so a missing translation is a constructor error, not a review finding; the
layout is computed from rows of widths, so panels cannot overlap by hand. The Grafana foundation SDK
(PyPI ``grafana-foundation-sdk``) would add a large generated dependency versioned per Grafana
release, and still leave both concerns to us.

Rendering targets Grafana 11 (dashboard schemaVersion 39, unified alerting provisioning v1).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
PanelKind = Literal["timeseries", "stat", "bargauge", "barchart", "table", "state-timeline"]
ResultFormat = Literal["time_series", "table"]

DATASOURCE_UID = "factory-influxdb"
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}
GRID_WIDTH = 24


@dataclass(frozen=True, slots=True)
class Text:
    """Words a person reads, in English and Simplified Chinese."""

    en: str
    zh: str

    def __post_init__(self) -> None:
        if not self.en.strip() or not self.zh.strip():
            raise ValueError(f"a text needs both languages: en={self.en!r} zh={self.zh!r}")

    def __call__(self, language: Language) -> str:
        return self.zh if language == "zh" else self.en


@dataclass(frozen=True, slots=True)
class Query:
    """One InfluxQL target. ``legend`` names the series (Grafana's alias; may hold $tag_x)."""

    influxql: str
    legend: Text | None = None
    format: ResultFormat = "time_series"

    def render(self, ref: str, language: Language) -> dict[str, Any]:
        target: dict[str, Any] = {
            "refId": ref,
            "datasource": DATASOURCE,
            "query": self.influxql,
            "rawQuery": True,
            "resultFormat": self.format,
        }
        if self.legend is not None:
            target["alias"] = self.legend(language)
        return target


@dataclass(frozen=True, slots=True)
class Unit:
    """A Grafana unit id (``percentunit``), or a suffix shown after the number in each language."""

    grafana: str | None = None
    suffix: Text | None = None

    def render(self, language: Language) -> str | None:
        if self.suffix is not None:
            return f"suffix: {self.suffix(language)}"
        return self.grafana


PERCENT = Unit("percentunit")
ALL = Text("All", "全部")
DASHBOARDS_LINK = Text("Smart factory dashboards", "智能工厂看板")
NONE = Unit()


@dataclass(frozen=True, slots=True)
class Panel:
    """A panel: what it shows, the queries behind it and its size; its place comes from the row."""

    title: Text
    kind: PanelKind
    queries: tuple[Query, ...]
    description: Text
    width: int = 12
    height: int = 8
    unit: Unit = NONE
    decimals: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    thresholds: tuple[tuple[float | None, str], ...] = ((None, "green"),)
    value_text: Mapping[str, tuple[Text, str]] = field(default_factory=dict)  # raw value -> (words, colour)
    time_from: str | None = None  # panel-relative time ("10m"): a "now" panel on any dashboard range
    repeat: str | None = None  # one panel per value of this variable
    options: Mapping[str, Any] = field(default_factory=dict)
    transformations: tuple[Mapping[str, Any], ...] = ()  # Grafana's, in order; any Text in them is localised

    def render(self, panel_id: int, x: int, y: int, language: Language) -> dict[str, Any]:
        defaults: dict[str, Any] = {
            "thresholds": {
                "mode": "absolute",
                "steps": [{"value": value, "color": colour} for value, colour in self.thresholds],
            }
        }
        if (unit := self.unit.render(language)) is not None:
            defaults["unit"] = unit
        for key, value in (("decimals", self.decimals), ("min", self.minimum), ("max", self.maximum)):
            if value is not None:
                defaults[key] = value
        if self.value_text:
            defaults["mappings"] = [
                {
                    "type": "value",
                    "options": {
                        raw: {"text": text(language), "color": colour, "index": index}
                        for index, (raw, (text, colour)) in enumerate(self.value_text.items())
                    },
                }
            ]
        if self.kind == "state-timeline":
            defaults["color"] = {"mode": "thresholds"}
        panel: dict[str, Any] = {
            "id": panel_id,
            "type": self.kind,
            "title": self.title(language),
            "description": self.description(language),
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "datasource": DATASOURCE,
            "targets": [q.render(chr(ord("A") + i), language) for i, q in enumerate(self.queries)],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": localised(self.options, language),
        }
        if self.time_from is not None:
            panel["timeFrom"] = self.time_from
        if self.repeat is not None:
            panel["repeat"] = self.repeat
            panel["repeatDirection"] = "h"
        if self.transformations:
            panel["transformations"] = [localised(t, language) for t in self.transformations]
        return panel


def localised(node: Any, language: Language) -> Any:
    """A copy of ``node`` with every Text in it (at any depth) in ``language``."""
    if isinstance(node, Text):
        return node(language)
    if isinstance(node, Mapping):
        return {key: localised(value, language) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [localised(item, language) for item in node]
    return node


def organize(columns: Mapping[str, Text], *, hide: Sequence[str] = ("Time",)) -> dict[str, Any]:
    """Grafana's "organize fields" transformation: columns renamed into words, the others hidden.

    Table-format InfluxQL results name their columns after tags and field aliases (``rule``,
    ``verdict``) and carry a ``Time`` column (the epoch, for a query without GROUP BY time).
    """
    return {
        "id": "organize",
        "options": {"excludeByName": dict.fromkeys(hide, True), "renameByName": dict(columns), "indexByName": {}},
    }


@dataclass(frozen=True, slots=True)
class Variable:
    """A template variable: a query over tag values (``query``), or a text box (``text_default``)."""

    name: str
    label: Text
    query: str | None = None
    text_default: str | None = None
    multi: bool = True
    include_all: bool = True

    def __post_init__(self) -> None:
        if (self.query is None) == (self.text_default is None):
            raise ValueError(f"variable {self.name}: either a query or a text box default")

    def render(self, language: Language) -> dict[str, Any]:
        if self.text_default is not None:
            return {
                "name": self.name,
                "label": self.label(language),
                "type": "textbox",
                "query": self.text_default,
                "current": {"text": self.text_default, "value": self.text_default},
            }
        variable: dict[str, Any] = {
            "name": self.name,
            "label": self.label(language),
            "type": "query",
            "datasource": DATASOURCE,
            "query": self.query,
            "refresh": 2,  # on time range change: new sites and machines appear without an edit
            "sort": 1,
            "multi": self.multi,
            "includeAll": self.include_all,
        }
        if self.include_all:
            variable["allValue"] = ".*"
            variable["current"] = {"text": ALL(language), "value": "$__all"}
        return variable


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    title: Text
    description: Text
    variables: tuple[Variable, ...]
    rows: tuple[tuple[Panel, ...], ...]
    time_from: str = "now-7d"
    refresh: str = "5m"

    def panels(self) -> list[tuple[Panel, int, int]]:
        """Every panel with its grid position: rows stacked, panels of a row side by side."""
        placed: list[tuple[Panel, int, int]] = []
        y = 0
        for row in self.rows:
            x = 0
            for panel in row:
                if x + panel.width > GRID_WIDTH:
                    raise ValueError(f"dashboard {self.uid}: row wider than {GRID_WIDTH} at {panel.title.en!r}")
                placed.append((panel, x, y))
                x += panel.width
            y += max(p.height for p in row)
        return placed

    def render(self, language: Language) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title(language),
            "description": self.description(language),
            "tags": ["smart-factory"],
            "timezone": "browser",
            "schemaVersion": 39,
            "version": 1,
            "editable": False,
            "graphTooltip": 1,
            "refresh": self.refresh,
            "time": {"from": self.time_from, "to": "now"},
            "templating": {"list": [v.render(language) for v in self.variables]},
            "annotations": {"list": []},
            "links": [
                {
                    "type": "dashboards",
                    "tags": ["smart-factory"],
                    "title": DASHBOARDS_LINK(language),
                    "asDropdown": True,
                    "includeVars": True,  # the park, site ... chosen here carry over
                    "keepTime": True,
                }
            ],
            "panels": [
                panel.render(index, x, y, language) for index, (panel, x, y) in enumerate(self.panels(), start=1)
            ],
        }


# ---------------------------------------------------------------------------------------------
# Alert rules (Grafana unified alerting)

Comparison = Literal["gt", "lt"]


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """An InfluxQL query named ``ref`` (lower case: see ``AlertRule``), evaluated over the last
    ``seconds`` and ending ``until_seconds`` before now."""

    ref: str
    influxql: str
    seconds: int
    until_seconds: int = 0

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.ref):
            raise ValueError(f"alert query ref {self.ref!r}: lower case letters, digits and _")


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A rule: its queries, each reduced to its last value per series (``last_<ref>``), and
    ``condition``, a Grafana math expression over the queries (``$now > 1.1 * $baseline``), firing
    where it is non-zero for ``pending``.

    Query refs are lower case words, never ``$A``: provisioning files are scanned for ``$NAME``
    environment variables (Grafana expands them in some fields, and the deployment checks that each
    one it reads is passed to the container), and a word says what the query is.
    """

    uid: str
    title: Text
    summary: Text
    description: Text
    queries: tuple[AlertQuery, ...]
    condition: str
    pending: str = "5m"
    severity: str = "warning"
    no_data_ok: bool = True

    def __post_init__(self) -> None:
        refs = {q.ref for q in self.queries}
        if unknown := set(re.findall(r"\$(\w+)", self.condition)) - refs:
            raise ValueError(f"alert rule {self.uid}: the condition names unknown queries {sorted(unknown)}")

    def render(self, folder_uid: str, group: str, language: Language) -> dict[str, Any]:
        """The rule as Grafana's provisioning API and file provisioning both read it."""
        data: list[dict[str, Any]] = []
        for query in self.queries:
            data.append(
                {
                    "refId": query.ref,
                    "relativeTimeRange": {"from": query.seconds, "to": query.until_seconds},
                    "datasourceUid": DATASOURCE_UID,
                    "model": {
                        "refId": query.ref,
                        "datasource": dict(DATASOURCE),
                        "query": query.influxql,
                        "rawQuery": True,
                        "resultFormat": "time_series",
                        "intervalMs": 60000,
                        "maxDataPoints": 43200,
                    },
                }
            )
        for query in self.queries:
            reduce = {"type": "reduce", "expression": query.ref, "reducer": "last"}
            data.append(_expression(f"last_{query.ref}", reduce))
        # ${name}: Grafana's math takes any refId in braces (its docs show a bare $A only for plain ones)
        condition = re.sub(r"\$(\w+)", r"${last_\1}", self.condition)
        data.append(_expression("firing", {"type": "math", "expression": condition}))
        return {
            "uid": self.uid,
            "title": self.title(language),
            "ruleGroup": group,
            "folderUID": folder_uid,
            "orgID": 1,
            "condition": "firing",
            "data": data,
            "noDataState": "OK" if self.no_data_ok else "NoData",
            "execErrState": "Error",
            "for": self.pending,
            "annotations": {"summary": self.summary(language), "description": self.description(language)},
            "labels": {"severity": self.severity, "source": "smart-factory"},
            "isPaused": False,
        }


def _expression(ref: str, model: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "refId": ref,
        "relativeTimeRange": {"from": 0, "to": 0},
        "datasourceUid": "__expr__",
        "model": {"refId": ref, "datasource": {"type": "__expr__", "uid": "__expr__"}, **model},
    }


@dataclass(frozen=True, slots=True)
class RuleGroup:
    name: str
    interval_s: int
    rules: Sequence[AlertRule]
