"""Rollups: the KPI read path. Hourly base quantities per equipment, and their sums per local day.

* ``kpi_base_hourly``: one point per equipment and UTC hour (stamped with the hour start), tagged
  like the raw points; fields are the base quantities, ``carry`` (the equipment's last readings at
  the hour's end, so the next hour never needs a look-back), ``raw_points`` (raw points of the hour
  the row was computed from: a different count later means late data), ``schema`` and ``fp``.
* ``kpi_base_daily``: one point per equipment and local day of its site (stamped with local
  midnight), the sum of that day's hourly rows, with ``hours`` (how many were summed).
* ``kpi_base_monthly``: likewise per local month of its site, with ``days``.

In a park of several sites every equipment's days and months are those of its own site's zone.

A row counts only if its ``schema`` is ``ROLLUP_SCHEMA`` and its ``fp`` is the equipment's current
fingerprint (its asset entry, the evidence rules and its calendar): anything else is treated as
missing, so a report computes those hours from raw data and the worker rebuilds them. Changing the
schema or the configuration can never mix old and new numbers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.assets import AssetModel, Equipment
from core.signals import Measurement
from core.store import Point, Store
from core.wire import datetime_to_ns, ns_to_datetime
from kpi.base import HOUR_NS, BaseQuantities, total
from kpi.fold import Carry, EvidenceRules

ROLLUP_SCHEMA = 2  # bump when the same raw data would give different rollup fields
HOURLY = Measurement.BASE_HOURLY.value
DAILY = Measurement.BASE_DAILY.value
MONTHLY = Measurement.BASE_MONTHLY.value


def fingerprint(eq: Equipment, rules: EvidenceRules, calendar: str = "") -> str:
    """What a rollup row of ``eq`` depends on besides raw data; rows with another one are stale."""
    text = json.dumps(
        [ROLLUP_SCHEMA, eq.model_dump(mode="json"), asdict(rules), calendar], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class HourRow:
    equipment: str
    hour_ns: int
    base: BaseQuantities
    carry: Carry
    raw_points: int


@dataclass(frozen=True, slots=True)
class SpanRow:
    """The sum of one equipment's rows over a local day (of hourly rows) or month (of daily rows)."""

    equipment: str
    start_ns: int  # local midnight, as UTC nanoseconds
    end_ns: int
    base: BaseQuantities
    parts: int  # hourly rows in a day row, daily rows in a month row


@dataclass(frozen=True, slots=True)
class Tier:
    """A level of sums above the hourly rows: its measurement, and what it counts of the level below."""

    name: str
    measurement: str
    parts_field: str


DAY = Tier("day", DAILY, "hours")
MONTH = Tier("month", MONTHLY, "days")


def _midnight(day: date, tz: ZoneInfo) -> int:
    return datetime_to_ns(datetime.combine(day, datetime.min.time(), tz))


def _next(tier: Tier, day: date) -> date:
    if tier is DAY:
        return day + timedelta(days=1)
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def span_of(tier: Tier, time_ns: int, tz: ZoneInfo) -> tuple[int, int]:
    """(start, end) of the local day or month ``time_ns`` falls in."""
    day = ns_to_datetime(time_ns).astimezone(tz).date()
    first = day if tier is DAY else day.replace(day=1)
    return _midnight(first, tz), _midnight(_next(tier, first), tz)


def local_spans(tier: Tier, start_ns: int, end_ns: int, tz: ZoneInfo) -> list[tuple[int, int]]:
    """(start, end) in ns of every local day or month that lies wholly inside [start, end)."""
    spans = []
    day = ns_to_datetime(start_ns).astimezone(tz).date()
    first = day if tier is DAY else day.replace(day=1)
    while True:
        begin, finish = _midnight(first, tz), _midnight(_next(tier, first), tz)
        if begin >= end_ns:
            break
        if begin >= start_ns and finish <= end_ns:
            spans.append((begin, finish))
        first = _next(tier, first)
    return spans


def expected_parts(tier: Tier, start_ns: int, end_ns: int, tz: ZoneInfo) -> int:
    """Hours in a local day (23 to 25 where clocks change), or days in a local month."""
    if tier is DAY:
        return (end_ns - start_ns) // HOUR_NS
    return len(local_spans(DAY, start_ns, end_ns, tz))


def _calendar_text(assets: AssetModel, equipment_id: str) -> str:
    tz, calendar = assets.calendar_of(equipment_id)
    return f"{tz.key}:{calendar.model_dump_json()}"


class Rollups:
    """Reads and writes rollup rows in a store for one asset model and one set of evidence rules."""

    def __init__(self, store: Store, assets: AssetModel, rules: EvidenceRules):
        self.store = store
        self.assets = assets
        self.rules = rules
        self._fp = {eq.id: fingerprint(eq, rules, _calendar_text(assets, eq.id)) for eq in assets}
        self._zone = {eq.id: assets.calendar_of(eq.id)[0] for eq in assets}

    def by_zone(self, equipment: Iterable[str]) -> list[tuple[ZoneInfo, list[str]]]:
        """Equipment grouped by the zone of its site (one group for a single site), in first-seen order."""
        groups: dict[str, tuple[ZoneInfo, list[str]]] = {}
        for eq in equipment:
            zone = self._zone[eq]
            groups.setdefault(zone.key, (zone, []))[1].append(eq)
        return list(groups.values())

    def fingerprint_of(self, equipment_id: str) -> str:
        return self._fp[equipment_id]

    # --- writing -------------------------------------------------------------------------------

    def hour_point(self, row: HourRow) -> Point:
        fields: dict[str, float | int | str] = {
            **row.base.to_fields(),
            "carry": row.carry.to_json(),
            "raw_points": row.raw_points,
            "schema": ROLLUP_SCHEMA,
            "fp": self._fp[row.equipment],
        }
        return Point(HOURLY, self.assets.placement(row.equipment).tags(), fields, row.hour_ns)

    def span_point(self, tier: Tier, row: SpanRow) -> Point:
        fields: dict[str, float | int | str] = {
            **row.base.to_fields(),
            tier.parts_field: row.parts,
            "schema": ROLLUP_SCHEMA,
            "fp": self._fp[row.equipment],
        }
        return Point(tier.measurement, self.assets.placement(row.equipment).tags(), fields, row.start_ns)

    async def write_hours(self, rows: Sequence[HourRow]) -> None:
        await self.store.write([self.hour_point(r) for r in rows])

    async def refresh(self, equipment: Iterable[str], hours: Iterable[int], settled_before_ns: int) -> int:
        """Rewrite the daily rows of the local days these hours fall in, then the monthly rows of their
        months, wherever the whole day or month has settled and every row below it is there."""
        hours = list(hours)
        written = 0
        for tz, ids in self.by_zone(dict.fromkeys(equipment)):
            days = sorted({span_of(DAY, h, tz) for h in hours})
            written += await self.refresh_spans(DAY, ids, days, settled_before_ns, tz)
            months = sorted({span_of(MONTH, d, tz) for d, _ in days})
            written += await self.refresh_spans(MONTH, ids, months, settled_before_ns, tz)
        return written

    async def refresh_spans(
        self,
        tier: Tier,
        equipment: Sequence[str],
        spans: Sequence[tuple[int, int]],
        settled_before_ns: int,
        tz: ZoneInfo,
    ) -> int:
        """Rewrite the rows of these local days or months (of ``tz``, the equipment's site zone) from the
        rows below them; returns rows written."""
        rows: list[SpanRow] = []
        for start_ns, end_ns in spans:
            if end_ns > settled_before_ns:
                continue
            parts: dict[str, list[BaseQuantities]] = {}
            if tier is DAY:
                for (eq, _), hour in (await self.read_hours(equipment, start_ns, end_ns)).items():
                    parts.setdefault(eq, []).append(hour.base)
            else:
                for (eq, _), day in (await self.read_days(equipment, start_ns, end_ns)).items():
                    parts.setdefault(eq, []).append(day.base)
            expected = expected_parts(tier, start_ns, end_ns, tz)
            rows += [
                SpanRow(eq, start_ns, end_ns, total(bases), len(bases))
                for eq, bases in parts.items()
                if len(bases) == expected
            ]
        await self.store.write([self.span_point(tier, r) for r in rows])
        return len(rows)

    # --- reading -------------------------------------------------------------------------------

    def _current(self, point: Point) -> str | None:
        """The equipment id of a row that is current (schema and fingerprint), else None."""
        eq = point.tags.get("equipment")
        if eq is None or eq not in self._fp:
            return None
        if point.fields.get("schema") != ROLLUP_SCHEMA or point.fields.get("fp") != self._fp[eq]:
            return None
        return eq

    async def read_hours(self, equipment: Sequence[str], start_ns: int, end_ns: int) -> dict[tuple[str, int], HourRow]:
        points = await self.store.read_points(
            HOURLY, ns_to_datetime(start_ns), ns_to_datetime(end_ns), {"equipment": list(equipment)}
        )
        rows: dict[tuple[str, int], HourRow] = {}
        for p in points:
            eq = self._current(p)
            carry = p.fields.get("carry")
            if eq is None or not isinstance(carry, str):
                continue
            raw_points = p.fields.get("raw_points", -1)
            rows[(eq, p.time_ns)] = HourRow(
                eq, p.time_ns, BaseQuantities.from_fields(p.fields), Carry.from_json(carry), int(raw_points or 0)
            )
        return rows

    async def read_days(self, equipment: Sequence[str], start_ns: int, end_ns: int) -> dict[tuple[str, int], SpanRow]:
        return await self.read_spans(DAY, equipment, start_ns, end_ns)

    async def read_spans(
        self, tier: Tier, equipment: Sequence[str], start_ns: int, end_ns: int
    ) -> dict[tuple[str, int], SpanRow]:
        """Current rows of the local days or months (of each equipment's site zone) wholly inside [start, end)."""
        rows: dict[tuple[str, int], SpanRow] = {}
        for tz, ids in self.by_zone(equipment):
            spans = {a: (b, expected_parts(tier, a, b, tz)) for a, b in local_spans(tier, start_ns, end_ns, tz)}
            if not spans:
                continue
            points = await self.store.read_points(
                tier.measurement, ns_to_datetime(start_ns), ns_to_datetime(end_ns), {"equipment": ids}
            )
            for p in points:
                eq = self._current(p)
                span = spans.get(p.time_ns)
                # Not a whole local span of this site's zone (the zone changed), or not every part summed: stale.
                if eq is None or span is None or p.fields.get(tier.parts_field) != span[1]:
                    continue
                rows[(eq, p.time_ns)] = SpanRow(eq, p.time_ns, span[0], BaseQuantities.from_fields(p.fields), span[1])
        return rows
