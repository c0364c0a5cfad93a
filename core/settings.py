"""Typed settings for every service: one YAML file plus environment variables.

* The YAML file holds everything that is not secret. Relative paths in it are relative to the file.
* ``FACTORY__SECTION__KEY=value`` overrides any key (``FACTORY__STORE__KIND=influxdb``).
* Secrets come only from the environment and are refused in the file:
  ``FACTORY_BROKER_PASSWORD``, ``FACTORY_INFLUX_PASSWORD``, ``FACTORY_INFLUX_TOKEN`` and
  ``FACTORY_API_KEYS`` (``key:role,key:role``; roles: viewer, auditor, admin).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from core.errors import ConfigError
from core.signals import MachineState
from core.wire import TimestampSource
from core.yamlconfig import read_yaml, validation_to_config_error

ENV_PREFIX = "FACTORY__"
SECRET_ENV = {
    ("broker", "password"): "FACTORY_BROKER_PASSWORD",
    ("store", "influx_password"): "FACTORY_INFLUX_PASSWORD",
    ("store", "influx_token"): "FACTORY_INFLUX_TOKEN",
}
API_KEYS_ENV = "FACTORY_API_KEYS"
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "password", "secret", "admin", "token", ""})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrokerSettings(_Section):
    """An MQTT broker: the platform's uplink broker, or a shop-floor broker that meters publish to."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    keepalive_s: int = Field(default=30, ge=5)


class StoreSettings(_Section):
    kind: Literal["sqlite", "influxdb"] = "sqlite"
    sqlite_path: Path = Path("var/factory.sqlite")
    influx_url: str = "http://127.0.0.1:8086"
    influx_database: str = "factory"
    influx_retention_policy: str | None = None
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_token: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0)


class UplinkSettings(_Section):
    topic_prefix: str = "factory/uplink"

    def topic(self, edge_id: str) -> str:
        return f"{self.topic_prefix}/{edge_id}"

    @property
    def subscription(self) -> str:
        return f"{self.topic_prefix}/+"


class OpcUaSource(_Section):
    """One OPC UA server and the nodes to subscribe to, by canonical signal name."""

    endpoint: str = Field(pattern=r"^opc\.tcp://")
    equipment: str
    nodes: dict[str, str] = Field(min_length=1, description="signal -> NodeId, e.g. state: 'ns=2;s=cnc-01.State'")
    sampling_interval_ms: int = Field(default=100, ge=0)
    timestamp_source: TimestampSource = TimestampSource.DEVICE
    state_map: dict[str, MachineState] = Field(
        default_factory=dict, description="raw device state code -> canonical state; empty: values are canonical"
    )
    refresh_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description=(
            "while connected, re-send the last value of every signal this often (gateway time, flag 'refresh'); "
            "at most the equipment's report_interval_s in the asset model"
        ),
    )


class MeterSource(_Section):
    """An MQTT energy meter: which topic, and where each signal sits in its JSON payload."""

    topic: str
    equipment: str
    fields: dict[str, str] = Field(min_length=1, description="signal -> dotted path in the JSON payload")
    timestamp_field: str | None = Field(default=None, description="dotted path to an ISO-8601 or epoch-seconds time")


class EdgeSettings(_Section):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    buffer_path: Path = Path("var/edge-buffer.sqlite")
    buffer_max_samples: int = Field(default=5_000_000, ge=1000)
    batch_max_samples: int = Field(default=1000, ge=1, le=50_000)
    flush_interval_s: float = Field(default=0.5, gt=0)
    opcua: list[OpcUaSource] = Field(default_factory=list)
    meters: list[MeterSource] = Field(default_factory=list)
    meter_broker: BrokerSettings | None = Field(
        default=None, description="shop-floor broker the meters publish to; default: the uplink broker"
    )


class IngestSettings(_Section):
    batch_max_points: int = Field(default=5000, ge=1)
    flush_interval_s: float = Field(default=1.0, gt=0)
    dead_letter_path: Path = Path("var/dead-letters.sqlite")
    client_id: str = "factory-ingest"


class KpiSettings(_Section):
    interval_s: float = Field(default=60.0, gt=0)
    lookback_h: float = Field(
        default=24.0, gt=0, description="how far back to look for the state and counters before a window"
    )
    recompute_hours: int = Field(default=2, ge=1, description="how many recent hours the worker recomputes each round")
    min_coverage: float = Field(
        default=0.5, ge=0, le=1, description="below this share of the window with data a KPI is insufficient evidence"
    )


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)


class SimulatorSettings(_Section):
    host: str = "127.0.0.1"
    base_port: int = Field(default=4840, ge=1, le=65535)
    seed: int = 1
    speed: float = Field(default=1.0, gt=0, description="simulated seconds per wall-clock second")
    meter_interval_s: float = Field(default=1.0, gt=0)
    meter_topic_prefix: str = "meters"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class DemoSettings(_Section):
    embedded_broker: bool = Field(
        default=True,
        description="start an in-process MQTT broker on loopback; false: use the broker section's real broker",
    )


class Settings(_Section):
    """Everything one deployment needs; each service reads the sections it uses."""

    assets: Path
    log_level: LogLevel = LogLevel.INFO
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    uplink: UplinkSettings = Field(default_factory=UplinkSettings)
    edge: EdgeSettings | None = None
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    kpi: KpiSettings = Field(default_factory=KpiSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("assets")
    @classmethod
    def _assets_exist(cls, path: Path) -> Path:
        if not path.is_file():
            raise ValueError(f"asset file {path} does not exist")
        return path


def _set_path(data: dict[str, Any], keys: list[str], value: Any) -> None:
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    def fix(section: dict[str, Any] | None, key: str) -> None:
        if isinstance(section, dict) and isinstance(section.get(key), str):
            p = Path(section[key])
            section[key] = str(p if p.is_absolute() else os.path.normpath(base / p))

    fix(data, "assets")
    fix(data.get("store"), "sqlite_path")
    fix(data.get("edge"), "buffer_path")
    fix(data.get("ingest"), "dead_letter_path")


def load_settings(path: Path | str, environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``path`` and the environment; any problem raises ConfigError."""
    environ = os.environ if environ is None else environ
    path = Path(path)
    data, index = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "the settings file must be a mapping of sections", line=1)
    for keys, env_name in SECRET_ENV.items():
        node: Any = data
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            raise ConfigError(
                str(path),
                f"secrets are not read from files; set the environment variable {env_name} instead",
                line=index.get(keys),
                field=".".join(keys),
            )
    _resolve_paths(data, path.parent.resolve())
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            path_keys = name[len(ENV_PREFIX) :].lower().split("__")
            _set_path(data, path_keys, yaml.safe_load(value) if value else value)
    for keys, env_name in SECRET_ENV.items():
        secret = environ.get(env_name)
        if secret:
            if secret.lower() in PLACEHOLDER_SECRETS:
                raise ConfigError(env_name, "refusing a placeholder secret; set a real one")
            _set_path(data, list(keys), secret)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(path, exc, index) from exc
    settings.source = path
    return settings


def parse_api_keys(raw: str | None) -> dict[str, str]:
    """``key:role,key:role`` from FACTORY_API_KEYS -> {key: role}. Short or placeholder keys are refused."""
    keys: dict[str, str] = {}
    for n, entry in enumerate(filter(None, (raw or "").split(",")), start=1):
        key, sep, role = entry.strip().rpartition(":")
        if not sep or not key:
            raise ConfigError(API_KEYS_ENV, f"entry {n} must look like KEY:ROLE")
        if role not in ("viewer", "auditor", "admin"):
            raise ConfigError(API_KEYS_ENV, f"entry {n}: unknown role {role!r} (viewer, auditor, admin)")
        if len(key) < 16 or key.lower() in PLACEHOLDER_SECRETS:
            raise ConfigError(API_KEYS_ENV, f"entry {n}: key is too short or a placeholder (need >= 16 chars)")
        keys[key] = role
    return keys
