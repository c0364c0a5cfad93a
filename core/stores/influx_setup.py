"""``factory store setup`` on InfluxDB: the database and the retention policies the settings name.

Idempotent: it reads what exists first (``SHOW DATABASES``, ``SHOW RETENTION POLICIES``) and sends
only what differs: ``CREATE DATABASE``, ``CREATE RETENTION POLICY``, or ``ALTER RETENTION POLICY``
when a duration or the default changed. A second run changes nothing and says so.

InfluxDB 1.x only: 2.x and 3.x do not run CREATE or ALTER on their v1 API. There a bucket (2.x)
or database (3.x) and, on 2.x, a DBRP mapping per policy are made with the server's own CLI
(docs/influxdb.md); setup then checks that each policy the settings name is mapped and says what is
missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import StoreError
from core.stores.influx import InfluxStore, quote_identifier
from core.stores.retention import (
    INFINITE,
    ExistingPolicy,
    RetentionPolicy,
    default_shard_duration,
    describe,
    parse_go_duration,
)


@dataclass(slots=True)
class SetupReport:
    """What setup found and did, one line each; ``changed`` counts the statements that changed something."""

    server: str
    lines: list[str] = field(default_factory=list)
    changed: int = 0
    missing: int = 0  # 2.x/3.x: policies the settings name that have no mapping (setup cannot make them)


def _rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for result in results:
        for series in result.get("series", ()):
            columns = series["columns"]
            rows.extend(dict(zip(columns, values, strict=False)) for values in series.get("values") or ())
    return rows


def _major(version: str) -> int | None:
    digits = version.lstrip("vV").split(".", 1)[0]
    return int(digits) if digits.isdigit() else None


async def existing_policies(store: InfluxStore) -> dict[str, ExistingPolicy]:
    """The database's retention policies by name."""
    results = await store.execute(f"SHOW RETENTION POLICIES ON {quote_identifier(store.database)}")
    policies = {}
    for row in _rows(results):
        shard = row.get("shardGroupDuration")
        policies[row["name"]] = ExistingPolicy(
            row["name"],
            parse_go_duration(str(row.get("duration", "0s"))),
            parse_go_duration(str(shard)) if shard else None,
            bool(row.get("default")),
        )
    return policies


def _duration_literal(policy: RetentionPolicy) -> str:
    return INFINITE if policy.length is None else policy.duration


def _plan(policy: RetentionPolicy, database: str, existing: ExistingPolicy | None) -> tuple[str | None, str]:
    """The statement that brings one policy to the settings (None: nothing to do), and what to print."""
    name, on = quote_identifier(policy.name), quote_identifier(database)
    length = policy.length
    label = f"retention policy {policy.name!r}" + (f" ({policy.holds})" if policy.holds else "")
    default = ", the database's default" if policy.default else ""
    if existing is None:
        statement = f"CREATE RETENTION POLICY {name} ON {on} DURATION {_duration_literal(policy)} REPLICATION 1"
        return statement + (" DEFAULT" if policy.default else ""), f"{label}: created, kept {describe(length)}{default}"
    clauses, changes = [], []
    if existing.duration != length:
        clauses.append(f"DURATION {_duration_literal(policy)}")
        # InfluxDB refuses a duration shorter than the policy's shard groups: shorten them with it.
        if length is not None and (existing.shard_duration is None or existing.shard_duration >= length):
            clauses.append(f"SHARD DURATION {default_shard_duration(length)}")
        change = f"kept {describe(existing.duration)} -> {describe(length)}"
        if length is not None and (existing.duration is None or length < existing.duration):
            change += f" (points older than {describe(length)} are deleted at the next retention check)"
        changes.append(change)
    if policy.default and not existing.default:
        clauses.append("DEFAULT")
        changes.append("made the database's default")
    if not clauses:
        return None, f"{label}: unchanged, kept {describe(length)}{default}"
    return f"ALTER RETENTION POLICY {name} ON {on} {' '.join(clauses)}", f"{label}: {'; '.join(changes)}"


async def set_up(store: InfluxStore, policies: Sequence[RetentionPolicy]) -> SetupReport:
    """Bring the database and ``policies`` to what the settings say; StoreError if the server refuses."""
    version = await store.server_version()
    report = SetupReport(f"InfluxDB {version} at {store.url}")
    major = _major(version)
    if major is not None and major >= 2:
        await _check_mapped(store, policies, report)
        return report
    databases = {row.get("name") for row in _rows(await store.execute("SHOW DATABASES"))}
    if store.database in databases:
        report.lines.append(f"database {store.database!r}: exists")
    else:
        await store.execute(f"CREATE DATABASE {quote_identifier(store.database)}")
        report.lines.append(f"database {store.database!r}: created")
        report.changed += 1
    existing = await existing_policies(store)
    for policy in policies:
        statement, line = _plan(policy, store.database, existing.get(policy.name))
        if statement is not None:
            await store.execute(statement)
            report.changed += 1
        report.lines.append(line)
    if not policies:
        default = next((p for p in existing.values() if p.default), None)
        kept = f"{default.name!r}, kept {describe(default.duration)}" if default else "none"
        report.lines.append(f"no retention policies named in the settings: every point goes to the default ({kept})")
    return report


async def _check_mapped(store: InfluxStore, policies: Sequence[RetentionPolicy], report: SetupReport) -> None:
    """2.x/3.x: buckets and mappings are the server's CLI's to make; say which the settings need."""
    report.lines.append(
        "databases and retention policies are made with the server's own CLI on InfluxDB 2.x and 3.x"
        " (docs/influxdb.md); checking the mapping"
    )
    try:
        existing = await existing_policies(store)
    except StoreError as exc:
        report.lines.append(f"could not list the retention policies of {store.database!r}: {exc}")
        report.missing += max(1, len(policies))
        return
    for policy in policies:
        found = existing.get(policy.name)
        if found is None:
            report.missing += 1
            report.lines.append(
                f"retention policy {policy.name!r} ({policy.holds}): MISSING; map a bucket kept"
                f" {describe(policy.length)} to database {store.database!r}, policy {policy.name!r}"
            )
        else:
            report.lines.append(f"retention policy {policy.name!r} ({policy.holds}): mapped")
    if not existing:
        report.missing += 1
        report.lines.append(f"database {store.database!r}: MISSING; no bucket is mapped to it")
    elif not policies:
        report.lines.append(f"database {store.database!r}: mapped ({', '.join(sorted(existing))})")
