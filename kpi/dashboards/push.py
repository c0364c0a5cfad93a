"""``factory grafana push``: the datasource, folders, dashboards and alert rules into an existing Grafana.

Through grafana-client with a service-account token (``GRAFANA_TOKEN``, Editor role or better;
alert rules need the alerting writer permissions). Idempotent: each object is read first and
written only when it is missing or differs from what the build gives, so a second push sends no
write at all. Secrets: the datasource's InfluxDB password is read from the environment and sent only
when the datasource is created or ``reset_password`` is asked for (Grafana never returns it, so it
cannot be compared).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from kpi.dashboards.build import ALERT_FOLDER_UID, FOLDER_UID, Bundle


class PushError(Exception):
    """Grafana refused or could not be reached; the message says which object and why."""


@dataclass
class PushResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


def _contains(current: Any, wanted: Any) -> bool:
    """Whether ``current`` (what Grafana answers) holds everything in ``wanted`` (what we send).

    Grafana adds keys of its own (ids, versions, provenance, defaults inside queries), so objects
    compare as subsets, at every depth; lists element by element; everything else by value.
    """
    if isinstance(wanted, Mapping):
        return isinstance(current, Mapping) and all(
            key in current and _contains(current[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(current, list)
            and len(current) == len(wanted)
            and all(_contains(c, w) for c, w in zip(current, wanted, strict=True))
        )
    return bool(current == wanted)


def _missing(call: Callable[[], Any]) -> Any | None:
    """The object, or None where Grafana answers 404."""
    try:
        return call()
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


class GrafanaPush:
    def __init__(self, api: GrafanaApi, bundle: Bundle, influx_password: str, *, reset_password: bool = False):
        self.api = api
        self.bundle = bundle
        self.influx_password = influx_password
        self.reset_password = reset_password
        self.result = PushResult()

    @classmethod
    def connect(cls, url: str, token: str, bundle: Bundle, influx_password: str, **kwargs: Any) -> GrafanaPush:
        return cls(GrafanaApi.from_url(url, credential=token), bundle, influx_password, **kwargs)

    def run(self) -> PushResult:
        steps: tuple[tuple[str, Callable[[], None]], ...] = (
            ("datasource", self.datasource),
            ("folders", self.folders),
            ("dashboards", self.dashboards),
            ("alert rules", self.alert_rules),
        )
        for what, step in steps:
            try:
                step()
            except GrafanaException as exc:  # grafana-client maps transport errors to status 0
                if exc.status_code == 0:
                    raise PushError(f"{what}: cannot reach Grafana: {exc}") from exc
                raise PushError(f"{what}: Grafana answered {exc}") from exc
            except OSError as exc:  # refused, DNS, TLS: niquests' ConnectionError, which grafana-client lets through
                raise PushError(f"{what}: cannot reach Grafana: {exc}") from exc
        return self.result

    def _note(self, kind: str, name: str, before: Any | None, same: bool) -> bool:
        """Records what happens to an object; True where it must be written."""
        label = f"{kind} {name}"
        if before is None:
            self.result.created.append(label)
        elif same:
            self.result.unchanged.append(label)
        else:
            self.result.updated.append(label)
        return before is None or not same

    def datasource(self) -> None:
        wanted = {**self.bundle.datasource(), "isDefault": False}  # never take a user's default away
        current = _missing(lambda: self.api.datasource.get_datasource_by_uid(wanted["uid"]))
        same = current is not None and _contains(current, wanted) and not self.reset_password
        if not self._note("datasource", wanted["uid"], current, same):
            return
        body = {**wanted, "secureJsonData": {"password": self.influx_password}}
        if current is None:
            self.api.datasource.create_datasource(body)
        else:
            self.api.datasource.update_datasource_by_uid(wanted["uid"], body)

    def folders(self) -> None:
        for uid, title in (
            (FOLDER_UID, self.bundle.folder_title),
            (ALERT_FOLDER_UID, self.bundle.alert_folder_title),
        ):
            current = _missing(partial(self.api.folder.get_folder, uid))
            same = current is not None and current.get("title") == title
            if not self._note("folder", uid, current, same):
                continue
            if current is None:
                self.api.folder.create_folder(title, uid=uid)
            else:
                self.api.folder.update_folder(uid, title=title, overwrite=True)

    def dashboards(self) -> None:
        for dashboard in self.bundle.dashboard_json():
            uid = dashboard["uid"]
            current = _missing(partial(self.api.dashboard.get_dashboard, uid))
            # The fingerprint says whether this build is the one in Grafana (a key the build dropped
            # would still look "contained"); containment, whether someone edited it since.
            ours = {k: v for k, v in dashboard.items() if k != "version"}  # Grafana counts versions itself
            same = current is not None and _contains(current, {"dashboard": ours, "meta": {"folderUid": FOLDER_UID}})
            if self._note("dashboard", uid, current, same):
                self.api.dashboard.update_dashboard(
                    {
                        "dashboard": {**dashboard, "id": None},
                        "folderUid": FOLDER_UID,
                        "overwrite": True,
                        "message": "factory grafana push",
                    }
                )

    def alert_rules(self) -> None:
        provisioning = self.api.alertingprovisioning
        for rule in self.bundle.rule_json():
            uid = rule["uid"]
            current = _missing(partial(provisioning.get_alertrule, uid))
            same = current is not None and _contains(current, rule)
            if not self._note("alert rule", uid, current, same):
                continue
            if current is None:
                provisioning.create_alertrule(rule)
            else:
                provisioning.update_alertrule(uid, rule)
        group = self.bundle.rules
        current_group = _missing(partial(provisioning.get_rule_group, ALERT_FOLDER_UID, group.name))
        if current_group is not None and current_group.get("interval") != group.interval_s:
            self.result.updated.append(f"rule group {group.name}")
            provisioning.update_rule_group(
                ALERT_FOLDER_UID, group.name, {**current_group, "interval": group.interval_s, "title": group.name}
            )
