"""Shift calendars: working time and report buckets, checked against figures worked out by hand.

Asia/Shanghai is UTC+8 all year: local 06:00 is 22:00 UTC the day before, local midnight is 16:00 UTC.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from core.calendar import (
    ALL_DAY,
    OFF_SHIFT,
    Bucket,
    Bucketing,
    GroupBy,
    ShiftCalendar,
    check_zone,
    working_spans_ns,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
H = 3600 * 10**9  # one hour in ns
MIN = 60 * 10**9


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Nanoseconds since the epoch of a UTC wall-clock time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 10**9


def calendar(text: str) -> ShiftCalendar:
    return ShiftCalendar.model_validate(yaml.safe_load(text))


# Early and late shift on weekdays; Saturday and Sunday off.
TWO_SHIFTS = calendar(
    """
    shifts:
      - name: early
        days: mon-fri
        start: "06:00"
        end: "14:00"
        breaks: [{name: lunch, start: "11:30", end: "12:00"}]
      - {name: late, days: mon-fri, start: "14:00", end: "22:00"}
    """
)
# A night shift from Monday to Friday night; its tea break crosses midnight.
NIGHTS = calendar(
    """
    shifts:
      - name: night
        days: mon-fri
        start: "22:00"
        end: "06:00"
        breaks:
          - {name: tea, start: "23:45", end: "00:15"}
          - {name: meal, start: "02:00", end: "02:30"}
    """
)


def total(spans: list[tuple[int, int]]) -> int:
    return sum(b - a for a, b in spans)


def test_the_helper_agrees_with_a_hand_computed_epoch() -> None:
    # 1970-2025: 56 years, 14 of them leap (1972..2024) = 20,454 days; 1 Jan to 27 Nov 2026: 330 days.
    assert utc(2026, 11, 27) == (20_454 + 330) * 86_400 * 10**9 == 1_795_737_600 * 10**9


# -- working time ------------------------------------------------------------------------------


def test_a_state_window_across_local_midnight_and_a_shift_boundary() -> None:
    # Thursday 26 Nov 21:00 to Friday 27 Nov 07:30 local = Thu 13:00Z to Thu 23:30Z (10.5 h).
    start, end = utc(2026, 11, 26, 13), utc(2026, 11, 26, 23, 30)
    spans = working_spans_ns(TWO_SHIFTS, SHANGHAI, start, end)
    assert spans == [
        (utc(2026, 11, 26, 13), utc(2026, 11, 26, 14)),  # late shift, 21:00-22:00 local
        (utc(2026, 11, 26, 22), utc(2026, 11, 26, 23, 30)),  # Friday's early shift, 06:00-07:30 local
    ]
    assert total(spans) == 2 * H + 30 * MIN  # 1 h late + 1.5 h early
    assert (end - start) - total(spans) == 8 * H  # planned downtime: 22:00-06:00 local, no shift

    days = Bucketing(GroupBy.DAY, SHANGHAI, TWO_SHIFTS).buckets(start, end)
    assert [(b.key, b.duration_ns) for b in days] == [
        ("2026-11-26", 3 * H),  # 21:00-24:00 local = 13:00Z-16:00Z
        ("2026-11-27", 7 * H + 30 * MIN),  # 00:00-07:30 local = 16:00Z-23:30Z
    ]
    working_per_day = [total(working_spans_ns(TWO_SHIFTS, SHANGHAI, b.start_ns, b.end_ns)) for b in days]
    assert working_per_day == [1 * H, 1 * H + 30 * MIN]

    shifts = Bucketing("shift", SHANGHAI, TWO_SHIFTS).buckets(start, end)
    assert [(b.key, b.start_ns, b.end_ns) for b in shifts] == [
        ("2026-11-26T14:00+08:00 late", utc(2026, 11, 26, 13), utc(2026, 11, 26, 14)),  # clipped at 21:00 local
        ("2026-11-26T22:00+08:00 off-shift", utc(2026, 11, 26, 14), utc(2026, 11, 26, 22)),  # 22:00-06:00 local
        ("2026-11-27T06:00+08:00 early", utc(2026, 11, 26, 22), utc(2026, 11, 26, 23, 30)),  # clipped at 07:30
    ]
    # An hourly rollup goes to the shift its hour starts in.
    by_hour = Bucketing("shift", SHANGHAI, TWO_SHIFTS)
    assert by_hour.bucket_of(utc(2026, 11, 26, 13)).key == "2026-11-26T14:00+08:00 late"  # 21:00 local
    assert by_hour.bucket_of(utc(2026, 11, 26, 14)).key == "2026-11-26T22:00+08:00 off-shift"  # 22:00 local
    assert by_hour.bucket_of(utc(2026, 11, 26, 22)) == Bucket(
        "2026-11-27T06:00+08:00 early",
        utc(2026, 11, 26, 22),  # 06:00 local
        utc(2026, 11, 27, 6),  # 14:00 local
        "early: Fri 2026-11-27 06:00-14:00",
    )


def test_a_night_shift_crosses_midnight_with_its_breaks_and_belongs_to_its_first_day() -> None:
    # Friday 27 Nov 20:00 local to Monday 30 Nov 08:00 local (60 h) = Fri 12:00Z to Mon 00:00Z.
    start, end = utc(2026, 11, 27, 12), utc(2026, 11, 30, 0)
    spans = working_spans_ns(NIGHTS, SHANGHAI, start, end)
    # Friday night runs into Saturday; Saturday and Sunday nights have no shift; Monday's starts at 22:00.
    assert spans == [
        (utc(2026, 11, 27, 14), utc(2026, 11, 27, 15, 45)),  # 22:00-23:45 local
        (utc(2026, 11, 27, 16, 15), utc(2026, 11, 27, 18)),  # 00:15-02:00 local (Saturday)
        (utc(2026, 11, 27, 18, 30), utc(2026, 11, 27, 22)),  # 02:30-06:00 local
    ]
    assert total(spans) == 7 * H  # 1.75 + 1.75 + 3.5: eight hours less two half-hour breaks

    shifts = Bucketing("shift", SHANGHAI, NIGHTS).buckets(start, end)
    assert [(b.key, b.duration_ns) for b in shifts] == [
        ("2026-11-27T06:00+08:00 off-shift", 2 * H),  # from Thursday night's end; clipped to 20:00-22:00
        ("2026-11-27T22:00+08:00 night", 8 * H),  # breaks belong to the shift
        ("2026-11-28T06:00+08:00 off-shift", 18 * H),  # Sat 06:00-24:00: no shift starts on Sunday, so cut
        ("2026-11-29T00:00+08:00 off-shift", 32 * H),  # Sun 00:00 to Monday night's 22:00, clipped at Mon 08:00
    ]
    assert sum(b.duration_ns for b in shifts) == end - start == 60 * H
    assert Bucketing("shift", SHANGHAI, NIGHTS).bucket_of(utc(2026, 11, 29, 0)).end_ns == utc(2026, 11, 30, 14)


def test_a_break_that_crosses_midnight_is_no_working_time() -> None:
    # Thursday 26 Nov, 23:00 to 01:00 local = 15:00Z to 17:00Z; the tea break is 23:45-00:15.
    spans = working_spans_ns(NIGHTS, SHANGHAI, utc(2026, 11, 26, 15), utc(2026, 11, 26, 17))
    assert spans == [
        (utc(2026, 11, 26, 15), utc(2026, 11, 26, 15, 45)),
        (utc(2026, 11, 26, 16, 15), utc(2026, 11, 26, 17)),
    ]


NIGHTS_AND_DAYS = calendar(
    """
    shifts:
      - {name: early, days: mon-fri, start: "06:00", end: "14:00", breaks: [{start: "11:30", end: "12:00"}]}
      - {name: late, days: mon-fri, start: "14:00", end: "22:00"}
      - {name: night, days: mon-fri, start: "22:00", end: "06:00", breaks: [{start: "02:00", end: "02:30"}]}
    holidays: [2026-10-01, 2026-10-02]
    """
)


def test_a_holiday_starts_no_shift_but_the_night_shift_of_its_eve_runs_into_it() -> None:
    # Wednesday 30 Sep to Saturday 3 Oct 2026, local midnights (72 h); 1 and 2 Oct are holidays.
    days = Bucketing("day", SHANGHAI, NIGHTS_AND_DAYS).buckets(utc(2026, 9, 29, 16), utc(2026, 10, 2, 16))
    worked = {b.key: total(working_spans_ns(NIGHTS_AND_DAYS, SHANGHAI, b.start_ns, b.end_ns)) for b in days}
    assert worked == {
        # Tuesday night's tail 00:00-06:00 less 02:00-02:30 (5.5 h), early 7.5 h, late 8 h, night's head 2 h
        "2026-09-30": 23 * H,
        "2026-10-01": 5 * H + 30 * MIN,  # Wednesday night's tail: 00:00-06:00 less its meal break
        "2026-10-02": 0,  # a holiday, and Thursday's night shift did not start on the holiday before it
    }
    spans = working_spans_ns(NIGHTS_AND_DAYS, SHANGHAI, utc(2026, 9, 29, 16), utc(2026, 10, 2, 16))
    assert spans[-1][1] == utc(2026, 9, 30, 22)  # the last working instant: Thu 1 Oct 06:00 local
    # Shift buckets: the holidays are off-shift, cut at each holiday's midnight after the night shift.
    shifts = Bucketing("shift", SHANGHAI, NIGHTS_AND_DAYS).buckets(utc(2026, 9, 30, 22), utc(2026, 10, 2, 16))
    assert [(b.key, b.duration_ns) for b in shifts] == [
        ("2026-10-01T06:00+08:00 off-shift", 18 * H),  # Thu 06:00-24:00
        ("2026-10-02T00:00+08:00 off-shift", 24 * H),  # Friday
    ]


def test_a_machine_idles_over_a_weekend_as_planned_downtime() -> None:
    # Friday 27 Nov 00:00 local to Monday 30 Nov 00:00 local (72 h) = Thu 16:00Z to Sun 16:00Z.
    start, end = utc(2026, 11, 26, 16), utc(2026, 11, 29, 16)
    spans = working_spans_ns(TWO_SHIFTS, SHANGHAI, start, end)
    assert spans == [
        (utc(2026, 11, 26, 22), utc(2026, 11, 27, 3, 30)),  # 06:00-11:30 local
        (utc(2026, 11, 27, 4), utc(2026, 11, 27, 14)),  # 12:00-22:00 local: early after lunch, then late
    ]
    assert total(spans) == 15 * H + 30 * MIN  # 7.5 h early + 8 h late, Friday only
    assert (end - start) - total(spans) == 56 * H + 30 * MIN  # planned downtime of the three days
    assert working_spans_ns(TWO_SHIFTS, SHANGHAI, utc(2026, 11, 27, 16), utc(2026, 11, 29, 16)) == []  # Sat, Sun


def test_a_makeup_day_works_like_the_weekday_it_names() -> None:
    with_makeup = calendar(
        """
        shifts:
          - {name: early, days: mon-fri, start: "06:00", end: "14:00", breaks: [{start: "11:30", end: "12:00"}]}
          - {name: late, days: mon-fri, start: "14:00", end: "22:00"}
        holidays: [2026-10-05]
        makeup_days: [{date: 2026-10-11, works_as: mon}]
        """
    )
    sunday = (utc(2026, 10, 10, 16), utc(2026, 10, 11, 16))  # Sunday 11 Oct, local midnight to midnight
    assert total(working_spans_ns(with_makeup, SHANGHAI, *sunday)) == 15 * H + 30 * MIN  # as a Monday
    assert total(working_spans_ns(TWO_SHIFTS, SHANGHAI, *sunday)) == 0  # an ordinary Sunday
    monday = (utc(2026, 10, 4, 16), utc(2026, 10, 5, 16))  # Monday 5 Oct: the holiday it makes up for
    assert total(working_spans_ns(with_makeup, SHANGHAI, *monday)) == 0


def test_without_shifts_the_calendar_works_around_the_clock_except_on_holidays() -> None:
    around = ShiftCalendar()
    start, end = utc(2026, 11, 26, 13), utc(2026, 11, 28, 13)
    assert working_spans_ns(around, SHANGHAI, start, end) == [(start, end)]  # merged over midnight
    holidays = calendar("holidays: [2026-11-27]")  # Friday
    assert working_spans_ns(holidays, SHANGHAI, start, end) == [
        (start, utc(2026, 11, 26, 16)),  # Thursday until local midnight
        (utc(2026, 11, 27, 16), end),  # from Saturday 00:00 local
    ]
    shifts = Bucketing("shift", SHANGHAI, holidays).buckets(start, end)
    assert [b.key for b in shifts] == [
        f"2026-11-26T00:00+08:00 {ALL_DAY}",
        f"2026-11-27T00:00+08:00 {OFF_SHIFT}",
        f"2026-11-28T00:00+08:00 {ALL_DAY}",
    ]


def test_working_periods_in_datetimes_match_the_nanoseconds() -> None:
    start, end = datetime(2026, 11, 23, tzinfo=SHANGHAI), datetime(2026, 12, 1, tzinfo=SHANGHAI)
    periods = NIGHTS_AND_DAYS.working_periods(start, end, SHANGHAI)
    spans = working_spans_ns(NIGHTS_AND_DAYS, SHANGHAI, utc(2026, 11, 22, 16), utc(2026, 11, 30, 16))
    assert [(utc(a.year, a.month, a.day, a.hour, a.minute), utc(b.year, b.month, b.day, b.hour, b.minute))
            for a, b in periods] == spans  # fmt: skip
    with pytest.raises(ValueError, match="aware"):
        NIGHTS_AND_DAYS.working_periods(datetime(2026, 11, 23), end, SHANGHAI)


def test_an_empty_or_reversed_window_has_no_working_time_and_no_buckets() -> None:
    t = utc(2026, 11, 26, 13)
    assert working_spans_ns(TWO_SHIFTS, SHANGHAI, t, t) == []
    assert working_spans_ns(TWO_SHIFTS, SHANGHAI, t, t - H) == []
    assert Bucketing("day", SHANGHAI).buckets(t, t) == []


# -- buckets ----------------------------------------------------------------------------------------


def test_week_and_month_buckets_around_a_month_end_are_local() -> None:
    # Saturday 28 Nov 00:00 to Thursday 3 Dec 00:00 local (120 h) = Fri 27 Nov 16:00Z to Wed 2 Dec 16:00Z.
    start, end = utc(2026, 11, 27, 16), utc(2026, 12, 2, 16)
    weeks = Bucketing("week", SHANGHAI, TWO_SHIFTS).buckets(start, end)
    assert [(b.key, b.start_ns, b.end_ns) for b in weeks] == [
        ("2026-W48", start, utc(2026, 11, 29, 16)),  # Sat and Sun of the week of Mon 23 Nov: 48 h
        ("2026-W49", utc(2026, 11, 29, 16), end),  # Mon 30 Nov 00:00 local onwards: 72 h
    ]
    assert [b.duration_ns for b in weeks] == [48 * H, 72 * H]
    months = Bucketing("month", SHANGHAI, TWO_SHIFTS).buckets(start, end)
    assert [(b.key, b.duration_ns) for b in months] == [("2026-11", 72 * H), ("2026-12", 48 * H)]
    assert months[1].start_ns == utc(2026, 11, 30, 16)  # 1 Dec 00:00 local is still 30 Nov in UTC

    by_month = Bucketing("month", SHANGHAI)
    assert by_month.bucket_of(utc(2026, 11, 30, 15)).key == "2026-11"  # the hour from 23:00 local on 30 Nov
    assert by_month.bucket_of(utc(2026, 11, 30, 16)) == Bucket(
        "2026-12", utc(2026, 11, 30, 16), utc(2026, 12, 31, 16), "Dec 2026"
    )
    whole_week = Bucketing("week", SHANGHAI).bucket_of(utc(2026, 12, 2, 0))
    assert (whole_week.start_ns, whole_week.end_ns) == (utc(2026, 11, 29, 16), utc(2026, 12, 6, 16))
    assert whole_week.label == "2026-W49: 2026-11-30 to 2026-12-06"


def test_iso_weeks_run_across_the_new_year() -> None:
    # 1 Jan 2026 was a Thursday, so 2026 has 53 ISO weeks; week 53 runs Mon 28 Dec 2026 to Sun 3 Jan 2027.
    week = Bucketing("week", SHANGHAI)
    new_year = week.bucket_of(utc(2026, 12, 31, 16))  # Fri 1 Jan 2027 00:00 local
    assert (new_year.key, new_year.start_ns, new_year.end_ns) == (
        "2026-W53",
        utc(2026, 12, 27, 16),  # Mon 28 Dec 00:00 local
        utc(2027, 1, 3, 16),  # Mon 4 Jan 00:00 local
    )
    assert week.bucket_of(utc(2027, 1, 3, 16)).key == "2027-W01"
    assert Bucketing("month", SHANGHAI).bucket_of(utc(2026, 12, 31, 16)).key == "2027-01"


def test_hour_buckets_are_store_hours_named_in_local_time() -> None:
    hours = Bucketing("hour", SHANGHAI).buckets(utc(2026, 11, 26, 15, 30), utc(2026, 11, 26, 17))
    assert [(b.key, b.duration_ns) for b in hours] == [
        ("2026-11-26T23:00+08:00", 30 * MIN),  # clipped: the window starts at 23:30 local
        ("2026-11-27T00:00+08:00", 1 * H),
    ]
    assert hours[1].label == "2026-11-27 00:00-01:00"
    # India is UTC+05:30: an hour of the store starts at half past in local time.
    assert Bucketing("hour", ZoneInfo("Asia/Kolkata")).bucket_of(utc(2026, 11, 26, 15, 10)).key == (
        "2026-11-26T20:30+05:30"
    )


def test_a_shift_boundary_inside_an_hour_goes_by_where_the_hour_starts() -> None:
    half_past = calendar(
        """
        shifts:
          - {name: early, days: mon-fri, start: "06:00", end: "14:30"}
          - {name: late, days: mon-fri, start: "14:30", end: "23:00"}
        """
    )
    shifts = Bucketing("shift", SHANGHAI, half_past)
    hour = utc(2026, 11, 26, 6)  # Thursday 14:00-15:00 local
    assert shifts.bucket_of(hour).key == "2026-11-26T06:00+08:00 early"  # the whole hour, though late starts 14:30
    assert shifts.bucket_of(hour + H).key == "2026-11-26T14:30+08:00 late"  # 15:00 local
    # Listing a window still splits it exactly: half an hour each.
    assert [(b.key, b.duration_ns) for b in shifts.buckets(hour, hour + H)] == [
        ("2026-11-26T06:00+08:00 early", 30 * MIN),
        ("2026-11-26T14:30+08:00 late", 30 * MIN),
    ]


def test_grouping_by_an_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError, match="group_by must be one of hour, shift, day, week, month, not 'fortnight'"):
        Bucketing("fortnight", SHANGHAI)


PROPERTY_CALENDARS = {
    "none": ShiftCalendar(),
    "two shifts": TWO_SHIFTS,
    "nights": NIGHTS,
    "three shifts, holidays, a make-up day": calendar(
        """
        shifts:
          - {name: early, days: mon-sat, start: "06:00", end: "14:00", breaks: [{start: "08:30", end: "08:45"}]}
          - {name: late, days: mon-fri, start: "14:00", end: "22:00", breaks: [{start: "17:30", end: "18:00"}]}
          - {name: night, days: [sun, mon, tue, wed, thu], start: "22:00", end: "05:30"}
          - {name: short, days: sun, start: "09:15", end: "11:45"}
        holidays: [2026-03-08, 2026-03-29, 2026-10-01, 2026-10-02, 2026-11-01]
        makeup_days: [{date: 2026-10-10, works_as: fri}]
        """
    ),
}


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Asia/Kolkata", "Europe/Berlin", "America/New_York", "UTC"])
@pytest.mark.parametrize("group_by", list(GroupBy))
def test_buckets_tile_any_window_exactly(zone: str, group_by: GroupBy) -> None:
    """Property test with a fixed seed (hypothesis is not a dependency): random windows, every calendar."""
    tz = ZoneInfo(zone)
    rng = random.Random(f"{zone}/{group_by}")
    lo, hi = utc(2026, 2, 20), utc(2026, 12, 10)  # includes both DST changes of Berlin and New York
    for name, cal in PROPERTY_CALENDARS.items():
        bucketing = Bucketing(group_by, tz, cal)
        for _ in range(25):
            start = rng.randrange(lo, hi, rng.choice([1, 10**9, MIN, H]))
            end = start + rng.randrange(1, (40 if group_by in (GroupBy.WEEK, GroupBy.MONTH) else 5) * 24 * H)
            buckets = bucketing.buckets(start, end)
            where = f"{name}, {zone}, {group_by}, [{start}, {end})"
            assert buckets[0].start_ns == start and buckets[-1].end_ns == end, where
            assert all(a.end_ns == b.start_ns for a, b in itertools.pairwise(buckets)), where
            assert all(b.duration_ns > 0 for b in buckets), where
            assert sum(b.duration_ns for b in buckets) == end - start, where
            assert len({b.key for b in buckets}) == len(buckets), where
            for b in buckets:
                whole = bucketing.bucket_of(b.start_ns)
                assert whole.key == b.key and whole.start_ns <= b.start_ns and b.end_ns <= whole.end_ns, where
                assert bucketing.bucket_of(b.end_ns - 1).key == b.key, where
            working = working_spans_ns(cal, tz, start, end)
            assert all(start <= a < b <= end for a, b in working), where
            assert all(a[1] < b[0] for a, b in itertools.pairwise(working)), where  # merged
            per_bucket = [working_spans_ns(cal, tz, b.start_ns, b.end_ns) for b in buckets]
            assert sum(total(s) for s in per_bucket) == total(working), where
            if group_by == GroupBy.SHIFT:
                for b, spans in zip(buckets, per_bucket, strict=True):
                    assert not (b.key.endswith(OFF_SHIFT) and spans), where  # no working time off shift


def test_off_shift_buckets_hold_no_working_time_and_shifts_hold_all_of_it() -> None:
    cal = PROPERTY_CALENDARS["three shifts, holidays, a make-up day"]
    start, end = utc(2026, 9, 20), utc(2026, 10, 20)
    buckets = Bucketing("shift", SHANGHAI, cal).buckets(start, end)
    worked = {b.key: total(working_spans_ns(cal, SHANGHAI, b.start_ns, b.end_ns)) for b in buckets}
    assert all(worked[b.key] == 0 for b in buckets if b.key.endswith(OFF_SHIFT))
    assert sum(worked.values()) == total(working_spans_ns(cal, SHANGHAI, start, end))
    # The make-up Saturday 10 Oct runs Friday's shifts: early (Saturday's anyway) and late.
    saturday = [b.key for b in buckets if b.key.startswith("2026-10-10")]
    assert saturday == [
        "2026-10-10T06:00+08:00 early",
        "2026-10-10T14:00+08:00 late",
        "2026-10-10T22:00+08:00 off-shift",  # until Sunday's short shift at 09:15
    ]


# -- validation ------------------------------------------------------------------------------------


def refused(text: str) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(ValidationError) as info:
        calendar(text)
    first = info.value.errors()[0]
    return tuple(first["loc"]), first["msg"]


def test_clock_times_are_quoted_text_or_unquoted_yaml_minutes() -> None:
    # YAML 1.1 reads 06:00 unquoted as the integer 360, and 25:00 as 1500.
    cal = calendar("shifts: [{name: a, start: 06:00, end: '14:30:15'}]")
    assert (cal.shifts[0].start, cal.shifts[0].end) == (time(6), time(14, 30, 15))
    assert refused("shifts: [{name: a, start: 25:00, end: '14:00'}]") == (
        ("shifts", 0, "start"),
        'Value error, 1500 (unquoted 25:00?) is not a clock time: a clock time is quoted text from "00:00" to '
        '"23:59" (or "23:59:59")',
    )
    loc, message = refused("shifts: [{name: a, start: '6.5', end: '14:00'}]")
    assert loc == ("shifts", 0, "start") and "'6.5' is not a clock time" in message
    loc, message = refused("shifts: [{name: a, start: 6.5, end: '14:00'}]")  # pydantic would read 6.5 seconds
    assert loc == ("shifts", 0, "start") and "6.5 is not a clock time" in message


@pytest.mark.parametrize(
    ("text", "loc", "reason"),
    [
        (
            "shifts: [{name: a, start: '22:00', end: '06:00', breaks: [{start: '05:30', end: '06:30'}]}]",
            ("shifts", 0, "breaks", 0, "end"),
            "break 'break' (05:30-06:30) must lie inside its shift 'a' (22:00-06:00)",
        ),
        (
            "shifts: [{name: a, start: '22:00', end: '06:00', breaks: [{start: '21:00', end: '22:30'}]}]",
            ("shifts", 0, "breaks", 0, "start"),
            "must lie inside its shift",
        ),
        (
            "shifts: [{name: a, start: '06:00', end: '14:00',"
            " breaks: [{name: x, start: '10:00', end: '10:30'}, {name: y, start: '10:15', end: '10:45'}]}]",
            ("shifts", 0, "breaks", 1),
            "break 'y' (10:15-10:45) overlaps break 'x' (10:00-10:30)",
        ),
        (
            "shifts: [{name: a, start: '06:00', end: '14:00'}, {name: b, start: '13:00', end: '21:00'}]",
            ("shifts", 1),
            "shift 'b' overlaps shift 'a' ('a' Mon 06:00-14:00 and 'b' Mon 13:00-21:00)",
        ),
        (
            "shifts: [{name: a, days: mon, start: '06:00', end: '14:00'},"
            " {name: n, days: sun, start: '22:00', end: '06:30'}]",
            ("shifts", 1),
            "shift 'n' overlaps shift 'a' ('n' Sun 22:00-06:30 and 'a' Mon 06:00-14:00)",
        ),
        ("shifts: [{name: a, days: [mon, fry], start: '06:00', end: '14:00'}]", ("shifts", 0, "days", 1), "'mon'"),
        ("shifts: [{name: a, days: mon-fre, start: '06:00', end: '14:00'}]", ("shifts", 0, "days"), "'mon-fre'"),
        ("shifts: [{name: off-shift, start: '06:00', end: '14:00'}]", ("shifts", 0, "name"), "the time between"),
        ("shifts: [{name: early off-shift, start: '06:00', end: '14:00'}]", ("shifts", 0, "name"), "the time between"),
        ("holidays: [2026-10-01]\nmakeup_days: [{date: 2026-10-10, works_as: fri}]", ("makeup_days",), "need shifts"),
        (
            "shifts: [{name: a, start: '06:00', end: '14:00'}]\nholidays: [2026-10-10]\n"
            "makeup_days: [{date: 2026-10-10, works_as: fri}]",
            ("makeup_days", 0, "date"),
            "2026-10-10 is a holiday, too",
        ),
        (
            "shifts: [{name: a, start: '06:00', end: '14:00'}, {name: n, days: sat, start: '22:00', end: '07:00'}]\n"
            "makeup_days: [{date: 2026-10-11, works_as: mon}]",
            ("makeup_days", 0),
            "working 2026-10-11 as a mon makes shifts overlap ('n' Sat 22:00-07:00 and 'a' Sun 06:00-14:00)",
        ),
    ],
)
def test_a_broken_calendar_is_refused_where_the_mistake_is(text: str, loc: tuple[str | int, ...], reason: str) -> None:
    where, message = refused(text)
    assert where == loc, message
    assert reason in message


def test_time_zones_are_iana_names() -> None:
    assert check_zone("Asia/Shanghai") == "Asia/Shanghai"
    for wrong in ("Mars/Olympus", "", "/etc/passwd", "../x", "Asia", "localtime"):
        with pytest.raises(ValueError, match="unknown time zone"):
            check_zone(wrong)
    with pytest.raises(ValueError, match="did you mean Asia/Shanghai"):
        check_zone("asia/shanghai")


def test_the_calendar_keeps_its_dates_as_dates() -> None:
    cal = calendar("holidays: [2026-10-01]")
    assert cal.holidays == [date(2026, 10, 1)] and not cal.always_working
    assert ShiftCalendar().always_working


def test_a_copied_calendar_follows_its_own_holidays() -> None:
    copy = TWO_SHIFTS.model_copy(update={"holidays": [date(2026, 11, 27)]})
    friday = (utc(2026, 11, 26, 16), utc(2026, 11, 27, 16))
    assert total(working_spans_ns(TWO_SHIFTS, SHANGHAI, *friday)) == 15 * H + 30 * MIN
    assert total(working_spans_ns(copy, SHANGHAI, *friday)) == 0
