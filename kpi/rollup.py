"""Rollups: the KPI read path. Hourly base quantities per equipment, and their sums per local day.

* ``kpi_base_hourly``: one point per equipment and UTC hour (stamped with the hour start), tagged
  like the raw points; fields are the base quantities, ``carry`` (the equipment's last readings at
  the hour's end, so the next hour never needs a look-back), ``raw_points`` (raw points of the hour
  the row was computed from: a different count later means late data), ``schema`` and ``fp``.
* ``kpi_base_daily``: one point per equipment and local day of its site (stamped with local
  midnight), the sum of that day's hourly rows, with ``hours`` (how many were summed).

A row counts only if its ``schema`` is ``ROLLUP_SCHEMA`` and its ``fp`` is the equipment's current
fingerprint (its asset entry, the evidence rules and its calendar): anything else is treated as
missing, so a report computes those hours from raw data and the worker rebuilds them. Changing the
schema or the configuration can never mix old and new numbers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.assets import AssetModel, Equipment
from core.signals import Measurement
from core.store import Point, Store
from core.wire import datetime_to_ns, ns_to_datetime
from kpi.base import HOUR_NS, BaseQuantities, total
from kpi.fold import Carry, EvidenceRules

ROLLUP_SCHEMA = 2  # bump when the same raw data would give different rollup fields
HOURLY = Measurement.BASE_HOURLY.value
DAILY = "kpi_base_daily"


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
class DayRow:
    equipment: str
    day_ns: int  # local midnight, as UTC nanoseconds
    end_ns: int
    base: BaseQuantities
    hours: int


def local_days(start_ns: int, end_ns: int, tz: ZoneInfo) -> list[tuple[int, int]]:
    """(day start, day end) in ns of every local day that lies wholly inside [start, end)."""
    first = ns_to_datetime(start_ns).astimezone(tz).date()
    days = []
    day = first
    while True:
        begin = datetime_to_ns(datetime.combine(day, datetime.min.time(), tz))
        finish = datetime_to_ns(datetime.combine(day + timedelta(days=1), datetime.min.time(), tz))
        if begin >= end_ns:
            break
        if begin >= start_ns and finish <= end_ns:
            days.append((begin, finish))
        day += timedelta(days=1)
    return days


class Rollups:
    """Reads and writes rollup rows in a store for one asset model and one set of evidence rules."""

    def __init__(self, store: Store, assets: AssetModel, rules: EvidenceRules):
        self.store = store
        self.assets = assets
        self.rules = rules
        self.tz = ZoneInfo(assets.site.timezone)
        self._fp = {eq.id: fingerprint(eq, rules) for eq in assets}

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

    def day_point(self, row: DayRow) -> Point:
        fields: dict[str, float | int | str] = {
            **row.base.to_fields(),
            "hours": row.hours,
            "schema": ROLLUP_SCHEMA,
            "fp": self._fp[row.equipment],
        }
        return Point(DAILY, self.assets.placement(row.equipment).tags(), fields, row.day_ns)

    async def write_hours(self, rows: Sequence[HourRow]) -> None:
        await self.store.write([self.hour_point(r) for r in rows])

    async def write_days(self, rows: Sequence[DayRow]) -> None:
        await self.store.write([self.day_point(r) for r in rows])

    async def refresh_days(self, equipment: Iterable[str], hours: Iterable[int], settled_before_ns: int) -> int:
        """Rewrite the daily rows of the local days these hours fall in, for days wholly settled."""
        equipment = list(dict.fromkeys(equipment))
        days = sorted({self.day_of(h) for h in hours})
        rows: list[DayRow] = []
        for day_ns, end_ns in days:
            if end_ns > settled_before_ns or not equipment:
                continue
            found = await self.read_hours(equipment, day_ns, end_ns)
            expected = (end_ns - day_ns) // HOUR_NS
            for eq in equipment:
                mine = [r for (e, _), r in found.items() if e == eq]
                if len(mine) == expected:
                    rows.append(DayRow(eq, day_ns, end_ns, total(r.base for r in mine), len(mine)))
        await self.write_days(rows)
        return len(rows)

    def day_of(self, hour_ns: int) -> tuple[int, int]:
        local = ns_to_datetime(hour_ns).astimezone(self.tz).date()
        begin = datetime.combine(local, datetime.min.time(), self.tz)
        end = datetime.combine(local + timedelta(days=1), datetime.min.time(), self.tz)
        return datetime_to_ns(begin), datetime_to_ns(end)

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

    async def read_days(self, equipment: Sequence[str], start_ns: int, end_ns: int) -> dict[tuple[str, int], DayRow]:
        points = await self.store.read_points(
            DAILY, ns_to_datetime(start_ns), ns_to_datetime(end_ns), {"equipment": list(equipment)}
        )
        rows: dict[tuple[str, int], DayRow] = {}
        for p in points:
            eq = self._current(p)
            if eq is None:
                continue
            day_ns, end = self.day_of(p.time_ns)
            hours = p.fields.get("hours")
            if day_ns != p.time_ns or hours != (end - day_ns) // HOUR_NS or end > end_ns:
                continue  # not a whole local day of this site's zone (the zone changed): stale
            rows[(eq, p.time_ns)] = DayRow(eq, p.time_ns, end, BaseQuantities.from_fields(p.fields), int(hours))
        return rows


def carries(rows: Mapping[tuple[str, int], HourRow], hour_ns: int) -> dict[str, Carry]:
    """The carry at ``hour_ns`` per equipment: the carry stored with the hour before it."""
    return {eq: row.carry for (eq, h), row in rows.items() if h + HOUR_NS == hour_ns}
