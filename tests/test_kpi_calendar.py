"""Shift calendars in the KPI engine: calendar time outside shifts is planned downtime.

A small site in Asia/Shanghai (UTC+8) with a day shift 06:00-14:00 (lunch 12:00-12:30) and a late
shift 14:00-22:00, Monday to Friday. The machine's edge reports every minute (the refresh), so its
state is known throughout; every figure is worked out beside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.assets import AssetModel, load_asset_model
from core.store import Point
from core.stores.sqlite import SqliteStore
from core.wire import datetime_to_ns
from kpi.engine import KpiEngine

SHANGHAI = ZoneInfo("Asia/Shanghai")
ASSETS_YAML = """\
site:
  id: s1
  timezone: Asia/Shanghai
  calendar:
    shifts:
      - {name: day, days: mon-fri, start: "06:00", end: "14:00", breaks: [{name: lunch, start: "12:00", end: "12:30"}]}
      - {name: late, days: mon-fri, start: "14:00", end: "22:00"}
  workshops:
    - id: w1
      lines:
        - id: l1
          equipment:
            - {id: cnc-1, type: cnc, ideal_cycle_time_s: 30}
"""
# 2026-11-24 is a Tuesday; 2026-11-27 a Friday, 2026-11-30 a Monday.
TUE_21 = datetime(2026, 11, 24, 21, tzinfo=SHANGHAI)
WED_07 = datetime(2026, 11, 25, 7, tzinfo=SHANGHAI)
FRI_14 = datetime(2026, 11, 27, 14, tzinfo=SHANGHAI)
FRI_22 = datetime(2026, 11, 27, 22, tzinfo=SHANGHAI)
MON_06 = datetime(2026, 11, 30, 6, tzinfo=SHANGHAI)
MON_08 = datetime(2026, 11, 30, 8, tzinfo=SHANGHAI)


@pytest.fixture
def assets(tmp_path: Path) -> AssetModel:
    path = tmp_path / "assets.yaml"
    path.write_text(ASSETS_YAML)
    return load_asset_model(path)


def every_minute(assets: AssetModel, state: str, start: datetime, end: datetime) -> list[Point]:
    tags = {**assets.placement("cnc-1").tags(), "signal": "state"}
    minutes = int((end - start).total_seconds() // 60)
    first = datetime_to_ns(start)
    return [
        Point("machine_state", tags, {"value": state, "quality": "good"}, first + m * 60 * 10**9)
        for m in range(minutes)
    ]


@pytest.fixture
async def engine(assets: AssetModel, tmp_path: Path) -> AsyncIterator[KpiEngine]:
    store = SqliteStore(tmp_path / "calendar.sqlite")
    await store.write(every_minute(assets, "IDLE", TUE_21, WED_07))
    await store.write(every_minute(assets, "PRODUCING", FRI_14, FRI_22))
    await store.write(every_minute(assets, "IDLE", FRI_22, MON_06))
    await store.write(every_minute(assets, "PRODUCING", MON_06, MON_08))
    yield KpiEngine(store, assets, clock=lambda: MON_08 + timedelta(days=1))
    await store.close()


async def test_idle_across_the_shift_end_and_midnight_is_planned_downtime_outside_shifts(engine: KpiEngine) -> None:
    # IDLE Tue 21:00 - Wed 07:00 local: inside shifts Tue 21:00-22:00 and Wed 06:00-07:00 = 2 h of ADOT;
    # Tue 22:00 - Wed 06:00 (across midnight) no shift: 8 h of PDOT. The state is known all 10 h.
    report = await engine.report("cnc-1", TUE_21, WED_07, group_by="shift")
    assert (report.base.idle_time_s, report.base.planned_downtime_s) == (2 * 3600, 8 * 3600)
    assert report.base.coverage == 1.0
    # By shift: the rest of Tuesday's late shift, the time off shift until Wednesday's day shift, the
    # first hour of the day shift.
    assert [(g.key, g.base.idle_time_s, g.base.planned_downtime_s) for g in report.groups] == [
        ("2026-11-24T14:00+08:00 late", 3600, 0),
        ("2026-11-24T22:00+08:00 off-shift", 0, 8 * 3600),
        ("2026-11-25T06:00+08:00 day", 3600, 0),
    ]


async def test_a_machine_idle_over_the_weekend_is_not_a_loss(engine: KpiEngine) -> None:
    # Fri 22:00 - Mon 06:00 is 56 h without a shift: IDLE then is planned downtime, PBT is 0, and the
    # weekend alone has no availability to speak of (nothing was planned), not a bad one.
    weekend = await engine.report("cnc-1", FRI_22, MON_06)
    assert (weekend.base.planned_downtime_s, weekend.base.planned_busy_time_s) == (56 * 3600, 0)
    availability = next(k for k in weekend.kpis if k.key == "availability")
    assert (availability.value, availability.status) == (None, "ok")
    assert availability.reason is not None and "zero denominator" in availability.reason
    # Friday's late shift and Monday's first two hours PRODUCING, the weekend in between: 100 %.
    # APT 8 h (Fri 14-22) + 2 h (Mon 06-08) = 10 h = PBT; PDOT 56 h.
    around = await engine.report("cnc-1", FRI_14, MON_08, group_by="day")
    assert (around.base.production_time_s, around.base.planned_downtime_s) == (10 * 3600, 56 * 3600)
    assert next(k for k in around.kpis if k.key == "availability").value == 1.0
    # Daily groups in local days: Fri (14-24), Sat, Sun, Mon (00-08); Saturday is all planned.
    assert [g.key for g in around.groups] == ["2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"]
    assert around.groups[1].base.planned_downtime_s == 24 * 3600
