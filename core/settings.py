"""Typed settings for every service: one YAML file plus environment variables.

* The YAML file holds everything that is not secret. Relative paths in it are relative to the file.
* ``FACTORY__SECTION__KEY=value`` overrides any key (``FACTORY__STORE__KIND=influxdb``).
* Secrets come only from the environment and are refused in the file:
  ``FACTORY_BROKER_PASSWORD``, ``FACTORY_INFLUX_PASSWORD``, ``FACTORY_INFLUX_TOKEN``.
  API keys are neither: they live hashed in the key store (``api.keys_path``, ``factory keys``).
"""

from __future__ import annotations

import math
import os
import re
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from core.errors import ConfigError
from core.signals import MachineState
from core.stores.retention import RetentionPolicy, parse_duration
from core.wire import MAX_PAYLOAD_BYTES, TimestampSource, WireLimits
from core.yamlconfig import read_yaml, validation_to_config_error

ENV_PREFIX = "FACTORY__"
SECRET_ENV = {
    ("broker", "password"): "FACTORY_BROKER_PASSWORD",
    ("store", "influx_password"): "FACTORY_INFLUX_PASSWORD",
    ("store", "influx_token"): "FACTORY_INFLUX_TOKEN",
}
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "password", "secret", "admin", "token", ""})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrokerTls(_Section):
    """TLS to an MQTT broker (docs/configuration.md): whom to trust, and who we are when certificates say so."""

    ca_file: Path | None = Field(
        default=None, description="PEM file of the CA certificates the broker's must chain to; none: the system's"
    )
    cert_file: Path | None = Field(
        default=None, description="PEM client certificate: our identity (the edge id as CN, use_identity_as_username)"
    )
    key_file: Path | None = Field(default=None, description="the client certificate's private key, PEM, unencrypted")
    min_version: Literal["1.2", "1.3"] = "1.2"
    insecure: bool = Field(
        default=False,
        description="tests and development only: the broker's certificate is not checked at all (logged as a warning)",
    )

    @field_validator("min_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value  # YAML reads 1.2 as a number

    @model_validator(mode="after")
    def _certificate_with_its_key(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: a client certificate needs its private key")
        return self


class BrokerSettings(_Section):
    """An MQTT broker: the platform's uplink broker, or a shop-floor broker that meters publish to."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    keepalive_s: int = Field(default=30, ge=5)
    tls: BrokerTls | None = Field(default=None, description="none: plain MQTT (port 1883); set: TLS (port 8883)")


class StoreSettings(_Section):
    """The time-series store; for InfluxDB where it is, how to sign in and where points are kept (docs/influxdb.md)."""

    kind: Literal["sqlite", "influxdb"] = "sqlite"
    sqlite_path: Path = Path("var/factory.sqlite")
    influx_url: str = "http://127.0.0.1:8086"
    influx_database: str = Field(default="factory", min_length=1, description="1.x: the database; 2.x/3.x: DBRP")
    influx_retention_policy: str | None = Field(
        default=None, min_length=1, description="raw points are written here; none: the database's default policy"
    )
    influx_raw_retention: str = Field(
        default="INF",
        description="how long `factory store setup` has influx_retention_policy keep raw points (90d, 52w, INF)",
    )
    influx_rollup_retention_policy: str | None = Field(
        default=None,
        min_length=1,
        description="KPI rollups (kpi_base_*, kpi_rollup_meta) are written here; none: beside the raw points",
    )
    influx_rollup_retention: str = Field(
        default="INF", description="how long `factory store setup` has influx_rollup_retention_policy keep rollups"
    )
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_token: SecretStr | None = None
    influx_gzip: bool = Field(default=True, description="send /write bodies gzip-compressed (Content-Encoding: gzip)")
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("influx_raw_retention", "influx_rollup_retention")
    @classmethod
    def _a_duration(cls, value: str) -> str:
        parse_duration(value)  # ValueError names what is wrong
        return value.strip()

    @field_validator("influx_database", "influx_retention_policy", "influx_rollup_retention_policy")
    @classmethod
    def _a_name(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 for c in value):
            raise ValueError("must not contain control characters")
        return value

    @model_validator(mode="after")
    def _rollups_apart_or_beside(self) -> Self:
        if self.influx_rollup_retention_policy is not None and (
            self.influx_rollup_retention_policy == self.influx_retention_policy
        ):
            raise ValueError(
                "influx_rollup_retention_policy names the raw points' policy;"
                " leave it unset to keep rollups beside them"
            )
        return self

    def retention_policies(self) -> list[RetentionPolicy]:
        """The policies ``factory store setup`` keeps: raw points (the database's default) and rollups."""
        policies = []
        if self.influx_retention_policy is not None:
            raw = RetentionPolicy(self.influx_retention_policy, self.influx_raw_retention, True, "raw points")
            policies.append(raw)
        if self.influx_rollup_retention_policy is not None:
            policies.append(
                RetentionPolicy(self.influx_rollup_retention_policy, self.influx_rollup_retention, holds="KPI rollups")
            )
        return policies


class UplinkSettings(_Section):
    topic_prefix: str = "factory/uplink"

    def topic(self, edge_id: str) -> str:
        return f"{self.topic_prefix}/{edge_id}"

    @property
    def subscription(self) -> str:
        return f"{self.topic_prefix}/+"


class Deadband(_Section):
    """OPC UA data-change filter deadband: a change smaller than this is not reported."""

    kind: Literal["absolute", "percent"]
    value: float = Field(ge=0, le=1e12, description="absolute: in the value's unit; percent: of the EURange (0..100)")


class SignalOptions(_Section):
    """How one signal is read; every field left unset takes the source's value (``OpcUaSource``)."""

    sampling_interval_ms: float | None = Field(default=None, ge=0, le=86_400_000)
    queue_size: int | None = Field(default=None, ge=1, le=100_000, description="server-side queue per monitored item")
    deadband: Deadband | None = None
    trigger: Literal["status", "status_value", "status_value_timestamp"] | None = None
    mode: Literal["subscribe", "poll"] | None = Field(
        default=None, description="poll: read every poll_interval_ms (servers or nodes without subscriptions)"
    )
    poll_interval_ms: int | None = Field(default=None, ge=10, le=86_400_000)
    timestamp_source: TimestampSource | None = None


class SignalSpec(SignalOptions):
    """One signal: where it is (a NodeId or a browse path) and how to read it."""

    address: str = Field(
        min_length=1,
        max_length=4096,
        description=(
            "a NodeId ('ns=2;s=cnc-01.State', 'nsu=http://vendor/;i=5001', g=GUID, b=opaque) "
            "or a browse path from Objects ('/4:Machines/8:CNC-07/2:Monitoring', a segment's prefix a "
            "namespace index or '<uri>:')"
        ),
    )
    state_map: dict[str, MachineState] | None = Field(
        default=None, description="this signal's own map (device value by meaning -> canonical state)"
    )


class Discovery(_Section):
    """Find the machines of a companion-spec profile on a server, instead of listing NodeIds."""

    profile: Literal["machine-tool", "robot", "machinery"] = Field(
        description="machine-tool: OPC 40501; robot: OPC 40010; machinery: OPC 40001-1 MachineryItemState"
    )
    equipment: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "machine instance -> equipment id in the asset model; the instance by its BrowseName, "
            "SerialNumber or ProductInstanceUri"
        ),
    )
    root: str | None = Field(default=None, description="browse path to search under; default: the Machines folder")


class OpcUaSecurity(_Section):
    """OPC UA secure channel and user identity (docs/gateway-security.md).

    A policy other than None signs (Sign) or signs and encrypts (SignAndEncrypt) every message with
    the agent's application certificate (``factory edge cert``) and accepts only a server whose
    certificate is in ``trust_dir``. The user's password is read from the environment variable
    ``password_env`` at every connection, never from this file.
    """

    policy: Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"] = "None"
    mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    certificate: Path | None = Field(
        default=None, description="the agent's application certificate, DER or PEM (factory edge cert)"
    )
    private_key: Path | None = Field(default=None, description="its private key, PEM or DER, unencrypted, mode 0600")
    trust_dir: Path | None = Field(
        default=None,
        description="directory of trusted server (or CA) certificates, DER or PEM; refused ones go to ../rejected",
    )
    username: str | None = Field(default=None, min_length=1)
    password_env: str | None = Field(
        default=None, pattern=r"^[A-Z_][A-Z0-9_]*$", description="environment variable holding the user's password"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.policy == "None") != (self.mode == "None"):
            raise ValueError(
                f"policy {self.policy} with mode {self.mode}: policy None goes with mode None, "
                "and a security policy with mode Sign or SignAndEncrypt"
            )
        if self.policy != "None":
            missing = [name for name in ("certificate", "private_key", "trust_dir") if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    f"policy {self.policy} needs {', '.join(missing)} (factory edge cert makes the certificate, "
                    "its key and the trust directory)"
                )
        if (self.username is None) != (self.password_env is None):
            raise ValueError("username and password_env go together: the user's password comes from the environment")
        return self


class OpcUaSource(_Section):
    """One OPC UA server: the signals to read, by canonical signal name, or a profile to discover them by.

    ``nodes`` maps a signal to an address (a NodeId or a browse path) or to a ``SignalSpec`` with
    its own options; the source-level options below are every signal's defaults.
    """

    endpoint: str = Field(pattern=r"^opc\.tcp://")
    equipment: str | None = Field(default=None, description="the equipment of ``nodes``; with discovery: optional")
    nodes: dict[str, str | SignalSpec] = Field(
        default_factory=dict, description="signal -> address or spec, e.g. state: 'ns=2;s=cnc-01.State'"
    )
    discover: Discovery | None = None
    security: OpcUaSecurity | None = None
    sampling_interval_ms: int = Field(default=100, ge=0, description="publishing interval; every signal's default")
    queue_size: int = Field(default=1000, ge=1, le=100_000)
    deadband: Deadband | None = None
    trigger: Literal["status", "status_value", "status_value_timestamp"] = "status_value"
    mode: Literal["subscribe", "poll"] = "subscribe"
    poll_interval_ms: int = Field(default=1000, ge=10, le=86_400_000)
    timestamp_source: TimestampSource = TimestampSource.DEVICE
    earliest_timestamp: datetime = Field(
        default=datetime(2001, 1, 1, tzinfo=UTC),
        description="a device time before this is replaced by gateway time and flagged (a PLC that lost its clock)",
    )
    max_future_skew_s: float = Field(
        default=300.0, ge=0, le=86_400, description="a device time further ahead of the gateway's is replaced, flagged"
    )
    max_items_per_call: int | None = Field(
        default=None, ge=1, le=100_000, description="monitored items per request; default: the server's limit, or 500"
    )
    state_map: dict[str, MachineState] = Field(
        default_factory=dict,
        description=(
            "device state -> canonical state, by meaning: a LocalizedText by its text, an enumeration by value "
            "or name, a state NodeId by id, a number by value; empty: the profile's map, or canonical names"
        ),
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

    @model_validator(mode="after")
    def _signals_or_discovery(self) -> Self:
        if not self.nodes and self.discover is None:
            raise ValueError("give nodes (signal -> NodeId or browse path) or discover (a profile)")
        if self.nodes and self.equipment is None:
            raise ValueError("nodes need the equipment they belong to")
        return self

    @property
    def label(self) -> str:
        """How logs name the source: its equipment, or the endpoint when it discovers several."""
        return self.equipment or self.endpoint

    def equipment_ids(self) -> list[str]:
        """The equipment this source reads, as far as the configuration tells (discovery may find fewer)."""
        ids = [self.equipment] if self.equipment is not None else []
        if self.discover is not None:
            ids += [e for e in self.discover.equipment.values() if e not in ids]
        return ids

    def spec(self, signal: str) -> SignalSpec:
        """The signal's spec, a plain address made a spec."""
        entry = self.nodes[signal]
        return SignalSpec(address=entry) if isinstance(entry, str) else entry


class MeterField(_Section):
    """One signal of a meter payload: where its value sits, and the factor to the signal's unit."""

    path: str = Field(min_length=1, max_length=512, description="JSON path: 'energy.total', 'phases[0].kw', '$'")
    scale: float = Field(default=1.0, description="the value is multiplied by this (Wh -> kWh: 0.001)")

    @field_validator("scale")
    @classmethod
    def _a_usable_factor(cls, value: float) -> float:
        if not math.isfinite(value) or value == 0:
            raise ValueError("must be a finite number other than 0")
        return value


class MeterAvailability(_Section):
    """A meter's last will: the topic its broker publishes Online/Offline on (docs/meters.md)."""

    topic: str = Field(
        min_length=1, max_length=1024, description="topic filter; named levels as in the source's topic ('{device}')"
    )
    online: list[str] = Field(default_factory=lambda: ["Online", "online", "true", "1"], min_length=1)
    offline: list[str] = Field(default_factory=lambda: ["Offline", "offline", "false", "0"], min_length=1)
    path: str | None = Field(
        default=None, max_length=512, description="JSON path of the word in a JSON payload ({'state': 'online'})"
    )
    signal: str = Field(default="available", pattern=r"^[a-z][a-z0-9_]{0,63}$", description="1 online, 0 offline")

    @model_validator(mode="after")
    def _online_and_offline_apart(self) -> Self:
        if both := set(self.online) & set(self.offline):
            raise ValueError(f"{', '.join(sorted(both))!s} cannot mean both online and offline")
        return self


class MeterSource(_Section):
    """MQTT meters: a topic filter, the equipment and signals its topics map to, where values sit in the payload.

    ``topic`` may hold ``+`` and ``#`` wildcards and named levels (``meters/{meter}/reading``: a
    ``+`` whose text ``{meter}`` refers to); ``equipment`` and the signal names in ``fields`` are
    templates over them (``meter-{1}``: the first wildcard's text). docs/meters.md.
    """

    topic: str = Field(min_length=1, max_length=1024, description="topic filter: 'meters/{meter}', 'tele/+/SENSOR'")
    equipment: str = Field(
        min_length=1, max_length=256, description="equipment id, or a template over the topic's wildcards"
    )
    equipment_map: dict[str, str] = Field(
        default_factory=dict,
        description="rendered equipment template -> equipment id; set: devices not in it are ignored (counted)",
    )
    fields: dict[str, str | MeterField] = Field(
        min_length=1, description="signal (or signal template) -> JSON path in the payload, or a MeterField"
    )
    qos: Literal[0, 1, 2] = Field(default=1, description="MQTT QoS of the subscription")
    ignore: list[str] = Field(
        default_factory=list, description="topic filters under ``topic`` that are not readings (status, info)"
    )
    availability: MeterAvailability | None = None
    timestamp_field: str | None = Field(
        default=None, max_length=512, description="JSON path to the device time; none: gateway time"
    )
    timestamp_format: str = Field(
        default="auto",
        min_length=1,
        max_length=128,
        description="auto, iso, epoch_s, epoch_ms, epoch_us, or a strptime pattern ('%d.%m.%Y %H:%M:%S')",
    )
    timezone: str | None = Field(
        default=None,
        description="zone of times written without one: an IANA name ('Asia/Shanghai') or an offset ('+08:00')",
    )
    earliest_timestamp: datetime = Field(
        default=datetime(2001, 1, 1, tzinfo=UTC),
        description="a device time before this is replaced by gateway time and flagged (a meter that lost its clock)",
    )
    max_future_skew_s: float = Field(
        default=300.0, ge=0, le=86_400, description="a device time further ahead of the gateway's is replaced, flagged"
    )
    max_payload_bytes: int = Field(
        default=256 * 1024, ge=64, le=MAX_PAYLOAD_BYTES, description="larger payloads are rejected unread"
    )
    max_depth: int = Field(default=32, ge=1, le=256, description="payloads nested deeper are rejected")

    @field_validator("timestamp_format")
    @classmethod
    def _a_known_format(cls, value: str) -> str:
        if value not in TIMESTAMP_FORMATS and "%" not in value:
            raise ValueError(f"must be one of {', '.join(TIMESTAMP_FORMATS)} or a strptime pattern with '%' fields")
        return value

    @field_validator("timezone")
    @classmethod
    def _a_known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone_of(value)  # ValueError names what is wrong
        return value

    @field_validator("earliest_timestamp")
    @classmethod
    def _an_aware_floor(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone (Z or an offset)")
        if value.year < 1900:
            raise ValueError("must be in 1900 or later")
        return value

    @property
    def label(self) -> str:
        """How logs name the source: its equipment (template) and topic filter."""
        return self.equipment if self.equipment == self.topic else f"{self.equipment} ({self.topic})"

    def field_spec(self, signal: str) -> MeterField:
        """The signal's field, a plain path made a MeterField."""
        entry = self.fields[signal]
        return MeterField(path=entry) if isinstance(entry, str) else entry


TIMESTAMP_FORMATS = ("auto", "iso", "epoch_s", "epoch_ms", "epoch_us")
_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?$")


def zone_of(name: str) -> tzinfo:
    """A time zone by IANA name ('Europe/Berlin', 'UTC') or fixed offset ('+08:00', 'UTC-5', '+0530')."""
    if match := _OFFSET.match(name.strip()):
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if hours > 14 or minutes > 59:
            raise ValueError(f"offset {name!r} is out of range (-14:00 .. +14:00)")
        offset = timedelta(hours=hours, minutes=minutes)
        return timezone(-offset if sign == "-" else offset)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name like 'Asia/Shanghai', or '+08:00')") from None


class EdgeSettings(_Section):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    buffer_path: Path = Path("var/edge-buffer.sqlite")
    buffer_max_samples: int = Field(default=5_000_000, ge=1000)
    batch_max_samples: int = Field(default=1000, ge=1, le=50_000)
    flush_interval_s: float = Field(
        default=0.005,
        gt=0,
        le=10,
        description="samples gather in memory this long, then are written to the buffer together and sent at once",
    )
    opcua: list[OpcUaSource] = Field(default_factory=list)
    meters: list[MeterSource] = Field(default_factory=list)
    meter_broker: BrokerSettings | None = Field(
        default=None, description="shop-floor broker the meters publish to; default: the uplink broker"
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="serve Prometheus metrics on http://<metrics_host>:<port>/metrics"
    )
    metrics_host: str = Field(default="127.0.0.1", description="0.0.0.0: let a Prometheus elsewhere scrape it")


class IngestSettings(_Section):
    batch_max_points: int = Field(default=5000, ge=1)
    flush_interval_s: float = Field(default=1.0, gt=0)
    dead_letter_path: Path = Path("var/dead-letters.sqlite")
    client_id: str = "factory-ingest"
    max_payload_bytes: int = Field(
        default=MAX_PAYLOAD_BYTES, ge=1024, description="larger uplink messages are dead-lettered (first 1 MiB kept)"
    )
    max_past_days: float = Field(
        default=30.0, gt=0, description="samples older than this (by ingest's clock) are dead-lettered"
    )
    max_future_s: float = Field(
        default=300.0, ge=0, description="samples further ahead of ingest's clock than this are dead-lettered"
    )
    dead_letter_max_age_days: float = Field(default=30.0, gt=0, description="older dead letters are deleted")
    dead_letter_max_mb: float = Field(
        default=1024.0, gt=0, description="beyond this many MB of payloads the oldest dead letters are deleted"
    )
    mqtt_protocol: Literal["3.1.1", "5"] = Field(
        default="3.1.1", description="5 declares receive_maximum to the broker; amqtt (the demo's) speaks only 3.1.1"
    )
    receive_maximum: int = Field(
        default=100,
        ge=1,
        le=65535,
        description="unacknowledged messages the broker may have out to ingest (v5 Receive Maximum;"
        " with 3.1.1 set the broker's max_inflight_messages to the same)",
    )
    warning_interval_s: float = Field(
        default=60.0, gt=0, description="a repeated warning is logged once per interval, then with a count"
    )

    max_tracked_edges: int = Field(
        default=10_000, ge=1, description="sequence state is kept for this many edges, least recently heard dropped"
    )
    shared_group: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="join the MQTT shared subscription $share/<group>/...; every instance needs its own client_id",
    )
    group_topic_prefix: str = Field(
        default="factory/ingest",
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
        description="a group's instances report the sequence numbers they received on <prefix>/<group>/seq/<client_id>",
    )
    sequence_report_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="how often an instance of a group reports the numbers it received"
    )
    sequence_settle_s: float = Field(
        default=5.0,
        gt=0,
        description="in a group, a sequence number is judged (gap or not) this long after it is known;"
        " several report intervals, so the other instances have reported what they received",
    )

    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="serve Prometheus metrics on http://<metrics_host>:<port>/metrics"
    )
    metrics_host: str = "127.0.0.1"

    @field_validator("mqtt_protocol", mode="before")
    @classmethod
    def _protocol_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value  # YAML reads 5 as a number

    def subscription(self, uplink: UplinkSettings) -> str:
        """The topic filter ingest subscribes to: the uplink topics, shared among a group's instances."""
        return f"$share/{self.shared_group}/{uplink.subscription}" if self.shared_group else uplink.subscription

    def group_topic(self) -> str | None:
        """Where the instances of the shared group report the sequence numbers they received (None: no group)."""
        return f"{self.group_topic_prefix}/{self.shared_group}/seq" if self.shared_group else None

    def wire_limits(self) -> WireLimits:
        return WireLimits(
            max_payload_bytes=self.max_payload_bytes,
            max_past=timedelta(days=self.max_past_days),
            max_future=timedelta(seconds=self.max_future_s),
        )


class KpiSettings(_Section):
    interval_s: float = Field(default=60.0, gt=0, description="how often the worker brings the rollups up to date")
    min_coverage: float = Field(
        default=0.5, ge=0, le=1, description="below this share of the window with data a KPI is insufficient evidence"
    )
    settle_hours: int = Field(
        default=2,
        ge=0,
        le=48,
        description="the last closed hours that may still receive data: reports compute them from raw series and "
        "the worker rewrites their rollups every round",
    )
    late_data_horizon_h: float = Field(
        default=72.0, ge=0, description="how far back the worker looks for hours whose raw data changed after rollup"
    )
    late_scan_interval_s: float = Field(default=600.0, gt=0, description="how often it looks")
    gap_intervals: float = Field(
        default=3.0,
        gt=0,
        le=10_000,
        description="a reading is valid for this many report intervals of its equipment; a longer silence is offline",
    )
    max_rate_factor: float = Field(
        default=3.0, gt=0, le=1000, description="a part-counter step above this × elapsed / ideal cycle is excluded"
    )
    max_parts_step: int = Field(default=1_000_000, gt=0, description="a part-counter step above this is excluded")
    max_register_step: float = Field(default=1e9, gt=0, description="a meter register step above this is excluded")
    reset_group_s: float = Field(
        default=10.0, ge=0, le=3600, description="counters of one equipment dropping this close together: one reset"
    )
    energy_factors: Path | None = Field(
        default=None, description="energy coefficients and emission factors (config/energy.yaml); none: no kgce, CO2"
    )
    cnc_basis: Literal["process", "equipment"] = Field(
        default="process", description="key-process CNC rate counted by key process or by key-process equipment"
    )
    networking_threshold: float = Field(
        default=0.9, ge=0, le=1, description="a digital equipment is networked when its upload rate reaches this"
    )


class CertificationSettings(_Section):
    schemes_dir: Path | None = Field(
        default=None, description="users' certification schemes (*.yaml), loaded beside the shipped ones"
    )


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    reports_dir: Path = Field(
        default=Path("var/reports"), description="signed certification reports, one file each, never overwritten"
    )
    keys_path: Path = Field(
        default=Path("var/api-keys.sqlite"), description="the API keys, hashed (SQLite; `factory keys`)"
    )
    throttle_failures: int = Field(
        default=10, ge=1, le=10_000, description="wrong keys from one address within throttle_window_s before 429"
    )
    throttle_window_s: float = Field(default=60.0, gt=0, le=86_400)
    throttle_clients: int = Field(
        default=10_000, ge=1, description="addresses whose failures are remembered (least recent forgotten first)"
    )


class InputsSettings(_Section):
    """The business-input store (docs/inputs.md) and the limits of a CSV import."""

    path: Path = Path("var/inputs.sqlite")
    csv_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    csv_max_rows: int = Field(default=10_000, ge=1, le=1_000_000)


class ReportSettings(_Section):
    keys_dir: Path = Field(
        default=Path("var/keys"),
        description="per-site Ed25519 signing keys: <site>.pem (private, mode 0600) and <site>.pub",
    )


class SimulatorSettings(_Section):
    host: str = "127.0.0.1"
    site: str | None = Field(default=None, description="the site of the park simulated; default: its only site")
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
    certification: CertificationSettings = Field(default_factory=CertificationSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    inputs: InputsSettings = Field(default_factory=InputsSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
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
    edge = data.get("edge")
    for broker in (data.get("broker"), edge.get("meter_broker") if isinstance(edge, dict) else None):
        tls = broker.get("tls") if isinstance(broker, dict) else None
        for key in ("ca_file", "cert_file", "key_file"):
            fix(tls, key)
    sources = edge.get("opcua") if isinstance(edge, dict) else None
    for source in sources if isinstance(sources, list) else []:
        security = source.get("security") if isinstance(source, dict) else None
        for key in ("certificate", "private_key", "trust_dir"):
            fix(security, key)
    fix(data.get("certification"), "schemes_dir")
    fix(data.get("store"), "sqlite_path")
    fix(data.get("edge"), "buffer_path")
    fix(data.get("ingest"), "dead_letter_path")
    fix(data.get("kpi"), "energy_factors")
    fix(data.get("inputs"), "path")
    fix(data.get("api"), "keys_path")
    fix(data.get("reports"), "keys_dir")
    fix(data.get("api"), "reports_dir")


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
