"""Shift calendars: when a site or workshop means to work, and the buckets reports group time into.

A calendar is data (pydantic models, written inline in the asset file or a scenario file) read by
pure functions over integer nanoseconds since the epoch, UTC: ``working_spans_ns`` gives the time a
shift is on and not on a break (the KPI engine turns the rest of calendar time into planned
downtime), ``Bucketing`` cuts a window into hour, shift, day, week or month buckets in the site's
local time. Nothing here reads a clock.

The rules, shared by the platform and the simulators:

* Clock times are local wall-clock times in the site's time zone. A shift whose end is at or before
  its start ends on the next day: 22:00-06:00 is a night shift, 06:00-06:00 lasts 24 hours.
* A shift belongs to the day it starts on. It runs on its weekdays unless that day is a holiday; a
  night shift that starts on the eve of a holiday runs on into it.
* A make-up day (调休: a weekend day worked in exchange for a longer holiday) runs the shifts of the
  weekday it names instead of its own.
* Breaks are planned stops inside their shift; in a night shift they may cross midnight.
* A calendar without shifts works around the clock, except on its holidays.
* Shifts never overlap and neither do a shift's breaks (refused when the calendar is validated), so
  every instant lies in at most one shift.
* Exact in zones without daylight saving time (China, Japan, India...). In a zone with DST,
  wall-clock times go through zoneinfo with ``fold=0``: a shift across a change lasts an hour more
  or less, and a span inside a skipped hour can vanish; buckets still add up to their window.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

NS_PER_S = 1_000_000_000
HOUR_NS = 3600 * NS_PER_S
OFF_SHIFT = "off-shift"  # the name of the time between shifts in shift buckets
ALL_DAY = "all-day"  # the one shift of a calendar without shifts: each local day, midnight to midnight

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_DAY = timedelta(days=1)
_US = timedelta(microseconds=1)

# -- values as written in YAML ---------------------------------------------------------------------


@cache
def _zone_names() -> frozenset[str]:
    # "localtime" is whatever the server is set to and "Factory" means "not set": neither places a site.
    return frozenset(available_timezones() - {"localtime", "Factory"})


def check_zone(name: str) -> str:
    """An IANA time zone name such as ``Asia/Shanghai``, or ValueError naming the problem."""
    if name in _zone_names():
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    near = [z for z in _zone_names() if z.lower() == name.strip().lower()]
    hint = f"; did you mean {near[0]}?" if near else ""
    raise ValueError(f"unknown time zone {name!r} (use an IANA name like Asia/Shanghai{hint})")


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """Monday is 0, as ``date.weekday()``."""
        return list(Weekday).index(self)


_WEEKDAYS = tuple(Weekday)
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _parse_days(value: Any) -> Any:
    """``mon-fri``, ``"mon,wed"`` or a list -> list of day names; ranges may wrap (``sat-mon``)."""
    if isinstance(value, str):
        days: list[str] = []
        order = [d.value for d in Weekday]
        for part in filter(None, (p.strip().lower() for p in value.split(","))):
            first, sep, last = part.partition("-")
            if not sep:
                days.append(first)
                continue
            if first not in order or last not in order:
                raise ValueError(f"{part!r} is not a day range like 'mon-fri'")
            i = order.index(first)
            while True:
                days.append(order[i])
                if order[i] == last:
                    break
                i = (i + 1) % 7
        return days
    return value


_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
_CLOCK_HELP = 'a clock time is quoted text from "00:00" to "23:59" (or "23:59:59")'


def _parse_clock(value: Any) -> Any:
    """``"06:00"``, ``"06:00:30"`` or a ``time``; anything else is refused (pydantic would read 360 as seconds)."""
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 06:00 as the sexagesimal integer 360; take it back as minutes.
        hours, minutes = divmod(value, 60)
        if 0 <= hours < 24:
            return time(hours, minutes)
        raise ValueError(f"{value} (unquoted {hours}:{minutes:02d}?) is not a clock time: {_CLOCK_HELP}")
    if isinstance(value, str):
        match = _CLOCK.match(value)
        if match:
            hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
            if hours < 24 and minutes < 60 and seconds < 60:
                return time(hours, minutes, seconds)
        raise ValueError(f"{value!r} is not a clock time: {_CLOCK_HELP}")
    raise ValueError(f"{value!r} is not a clock time: {_CLOCK_HELP}")


ClockTime = Annotated[time, BeforeValidator(_parse_clock)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _invalid(model: str, loc: tuple[str | int, ...], reason: str, value: Any) -> ValidationError:
    """A validation error at ``loc`` inside the model, so the file's line points at the culprit."""
    error = PydanticCustomError("calendar", "{reason}", {"reason": reason})
    return ValidationError.from_exception_data(model, [InitErrorDetails(type=error, loc=loc, input=value)])


def _clock(at: time) -> str:
    return f"{at:%H:%M}" if not at.second else f"{at:%H:%M:%S}"


def _offset(at: time) -> timedelta:
    return timedelta(hours=at.hour, minutes=at.minute, seconds=at.second, microseconds=at.microsecond)


def _span(start: time, end: time, *, allow_zero: bool = False) -> timedelta:
    s, e = _offset(start), _offset(end)
    if e < s or (e == s and not allow_zero):
        e += _ONE_DAY
    return e - s


# -- the calendar ----------------------------------------------------------------------------------


class PlannedBreak(_Strict):
    """A planned stop inside a shift (lunch, tea); it may cross midnight in a night shift."""

    name: str = "break"
    start: ClockTime
    end: ClockTime


class Shift(_Strict):
    """A shift on some weekdays; its breaks are planned stops inside it."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    days: Annotated[list[Weekday], BeforeValidator(_parse_days), Field(min_length=1)] = Field(
        default_factory=lambda: [Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI]
    )
    start: ClockTime
    end: ClockTime
    breaks: list[PlannedBreak] = Field(default_factory=list)

    @property
    def length(self) -> timedelta:
        return _span(self.start, self.end)

    def offset_of(self, at: time) -> timedelta:
        """How long after the shift start the clock time ``at`` falls (on the shift's first or next day)."""
        return _span(self.start, at, allow_zero=True)

    def bounds_on(self, day: date) -> tuple[datetime, datetime]:
        """Naive local start and end of this shift when it starts on ``day``."""
        begin = datetime.combine(day, self.start)
        return begin, begin + self.length

    def working_time_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """Naive local ``[from, to)`` pieces of this shift started on ``day``, its breaks left out."""
        begin, end = self.bounds_on(day)
        pieces: list[tuple[datetime, datetime]] = []
        cursor = begin
        for brk in sorted(self.breaks, key=lambda b: self.offset_of(b.start)):
            b0, b1 = begin + self.offset_of(brk.start), begin + self.offset_of(brk.end)
            pieces.append((cursor, b0))
            cursor = b1
        pieces.append((cursor, end))
        return [(a, b) for a, b in pieces if b > a]

    @model_validator(mode="after")
    def _breaks_inside_and_apart(self) -> Self:
        if self.name.endswith(OFF_SHIFT):  # shift buckets are told apart by the end of their key
            raise _invalid("Shift", ("name",), f"{OFF_SHIFT!r} names the time between shifts", self.name)
        placed: list[tuple[timedelta, timedelta, int]] = []
        for i, brk in enumerate(self.breaks):
            begin, end = self.offset_of(brk.start), self.offset_of(brk.end)
            if not (begin < end <= self.length):
                where = "start" if begin >= self.length else "end"
                raise _invalid(
                    "Shift",
                    ("breaks", i, where),
                    f"break {brk.name!r} ({_clock(brk.start)}-{_clock(brk.end)}) must lie inside its shift "
                    f"{self.name!r} ({_clock(self.start)}-{_clock(self.end)})",
                    _clock(getattr(brk, where)),
                )
            placed.append((begin, end, i))
        placed.sort()
        for (_, end0, i), (begin1, _, j) in itertools.pairwise(placed):
            if begin1 < end0:
                first, second = self.breaks[i], self.breaks[j]
                raise _invalid(
                    "Shift",
                    ("breaks", j),
                    f"break {second.name!r} ({_clock(second.start)}-{_clock(second.end)}) overlaps break "
                    f"{first.name!r} ({_clock(first.start)}-{_clock(first.end)})",
                    second.name,
                )
        return self


# Every local day, midnight to midnight: what a calendar without shifts works.
_ALL_DAY_SHIFT = Shift(name=ALL_DAY, days=list(Weekday), start=time(0), end=time(0))


class MakeupDay(_Strict):
    """A day worked although it is normally off (调休): it runs the shifts of the weekday ``works_as``."""

    date: date
    works_as: Weekday


class ShiftCalendar(_Strict):
    """When the factory is meant to work. Time outside every shift, breaks and holidays are planned stops."""

    shifts: list[Shift] = Field(default_factory=list, description="empty: working around the clock")
    holidays: list[date] = Field(default_factory=list, description="days on which no shift starts")
    makeup_days: list[MakeupDay] = Field(default_factory=list, description="days worked like another weekday")

    @property
    def always_working(self) -> bool:
        return not self.shifts and not self.holidays

    def shifts_on(self, day: date) -> tuple[Shift, ...]:
        """The shifts that start on the local date ``day`` (a calendar without shifts: one all-day shift)."""
        # Worked out on every call, not cached on the model: model_copy(update=...) would carry a cache over.
        if day in self.holidays:
            return ()
        weekday = next((m.works_as for m in self.makeup_days if m.date == day), None) or _WEEKDAYS[day.weekday()]
        return tuple(shift for shift in self.shifts or [_ALL_DAY_SHIFT] if weekday in shift.days)

    def working_periods(self, start: datetime, end: datetime, tz: tzinfo) -> list[tuple[datetime, datetime]]:
        """``working_spans_ns`` with aware datetimes: the ``[from, to)`` spans inside ``[start, end)``, in UTC."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("working_periods needs aware datetimes")
        spans = working_spans_ns(self, tz, _datetime_to_ns(start), _datetime_to_ns(end))
        return [(_ns_to_datetime(a), _ns_to_datetime(b)) for a, b in spans]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        holidays = set(self.holidays)
        seen: set[date] = set()
        for k, makeup in enumerate(self.makeup_days):
            if not self.shifts:
                raise _invalid(
                    "ShiftCalendar",
                    ("makeup_days",),
                    "make-up days need shifts (a calendar without shifts works every day but its holidays)",
                    str(makeup.date),
                )
            if makeup.date in holidays:
                raise _invalid(
                    "ShiftCalendar", ("makeup_days", k, "date"), f"{makeup.date} is a holiday, too", str(makeup.date)
                )
            if makeup.date in seen:
                raise _invalid("ShiftCalendar", ("makeup_days", k, "date"), "listed twice", str(makeup.date))
            seen.add(makeup.date)
        # A shift lasts at most 24 h, so two occurrences can only meet on the same or the next day.
        # Eight plain days from a Monday cover every pair of the weekly pattern, Sunday night included.
        monday = date(2024, 1, 1)
        pattern = [
            (i, shift, monday + timedelta(days=n))
            for n in range(8)
            for i, shift in enumerate(self.shifts)
            if n % 7 in {d.number for d in shift.days}
        ]
        clash = _first_overlap(pattern)
        if clash is not None:
            (i, early, early_day), (j, late, late_day) = clash
            i, j = sorted((i, j))
            raise _invalid(
                "ShiftCalendar",
                ("shifts", j),
                f"shift {self.shifts[j].name!r} overlaps shift {self.shifts[i].name!r} "
                f"({_occurrence_text(early, early_day)} and {_occurrence_text(late, late_day)})",
                self.shifts[j].name,
            )
        for k, makeup in enumerate(self.makeup_days):
            days = _days(makeup.date - _ONE_DAY, makeup.date + _ONE_DAY)
            clash = _first_overlap([(0, shift, day) for day in days for shift in self.shifts_on(day)])
            if clash is not None:
                (_, a, a_day), (_, b, b_day) = clash
                raise _invalid(
                    "ShiftCalendar",
                    ("makeup_days", k),
                    f"working {makeup.date} as a {makeup.works_as.value} makes shifts overlap "
                    f"({_occurrence_text(a, a_day)} and {_occurrence_text(b, b_day)})",
                    str(makeup.date),
                )
        return self


def _occurrence_text(shift: Shift, day: date) -> str:
    return f"{shift.name!r} {_DAY_NAMES[day.weekday()]} {_clock(shift.start)}-{_clock(shift.end)}"


_Occurrence = tuple[int, Shift, date]  # (index in the calendar, shift, the local day it starts on)


def _first_overlap(occurrences: list[_Occurrence]) -> tuple[_Occurrence, _Occurrence] | None:
    """The first two shift occurrences (in start order) whose local times overlap, if any."""
    ordered = sorted(occurrences, key=lambda o: o[1].bounds_on(o[2])[0])
    for earlier, later in itertools.pairwise(ordered):
        # Sorted by start and none overlapping so far, so the previous one ends latest.
        if later[1].bounds_on(later[2])[0] < earlier[1].bounds_on(earlier[2])[1]:
            return earlier, later
    return None


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += _ONE_DAY


# -- instants --------------------------------------------------------------------------------------


def _datetime_to_ns(at: datetime) -> int:
    return (at - _EPOCH) // _US * 1000


def _ns_to_datetime(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _local_to_ns(local: datetime, tz: tzinfo) -> int:
    """A naive local wall-clock time to UTC ns (``fold=0`` for a repeated or skipped local time)."""
    return _datetime_to_ns(local.replace(tzinfo=tz))


def _local_date(ns: int, tz: tzinfo) -> date:
    return _ns_to_datetime(ns).astimezone(tz).date()


def _midnight_ns(day: date, tz: tzinfo) -> int:
    return _local_to_ns(datetime.combine(day, time(0)), tz)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def working_spans_ns(calendar: ShiftCalendar, tz: tzinfo, start_ns: int, end_ns: int) -> list[tuple[int, int]]:
    """The ``[from, to)`` spans inside ``[start_ns, end_ns)`` when a shift is on and not on a break.

    Sorted, merged (touching spans become one) and clipped to the window; integer nanoseconds since
    the epoch, UTC. Calendar time outside them is planned downtime.
    """
    if end_ns <= start_ns:
        return []
    spans: list[tuple[int, int]] = []
    # The day before the window: its night shift may run on into the window.
    for day in _days(_local_date(start_ns, tz) - _ONE_DAY, _local_date(end_ns, tz)):
        for shift in calendar.shifts_on(day):
            for a, b in shift.working_time_on(day):
                a_ns, b_ns = max(_local_to_ns(a, tz), start_ns), min(_local_to_ns(b, tz), end_ns)
                if a_ns < b_ns:
                    spans.append((a_ns, b_ns))
    return _merged(spans)


# -- buckets for reports ---------------------------------------------------------------------------


class GroupBy(StrEnum):
    HOUR = "hour"
    SHIFT = "shift"
    DAY = "day"
    WEEK = "week"  # ISO 8601: Monday to Sunday, numbered by ISO year
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class Bucket:
    """One report bucket: ``key`` groups (unique per bucket), ``[start_ns, end_ns)`` in UTC ns, ``label`` reads."""

    key: str
    start_ns: int
    end_ns: int
    label: str

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


# Days computed around an instant to find its shift bucket: every local day holds a bucket boundary
# (a shift start, a shift end or, on a day without a shift start, its midnight), so a bucket never
# spans more than about two days and three days either side always contain it whole.
_MARGIN_DAYS = 3
_BLOCK_DAYS = 28


class Bucketing:
    """Cuts time into report buckets in the site's local time: ``Bucketing("week", tz, calendar)``.

    * ``hour``: the store's hours (UTC hours; local hours wherever the zone's offset is whole hours).
      Key ``2026-11-27T22:00+08:00``.
    * ``day``, ``week`` (ISO, Monday to Sunday), ``month``: from local midnight to local midnight.
      Keys ``2026-11-27``, ``2026-W48``, ``2026-11``.
    * ``shift``: each shift as it ran, from its start to its end, breaks included (key
      ``2026-11-27T22:00+08:00 night``, named for the local time and day it starts); the time between
      shifts is ``off-shift``, cut at the midnight that begins each day on which no shift starts (a
      weekend gives one bucket for Saturday's rest and one from Sunday midnight to Monday's first
      shift). A calendar without shifts has one ``all-day`` shift per local day.

    ``bucket_of(t)`` is the whole bucket that contains the instant ``t``. Reports built from hourly
    rollups assign each hour to the bucket its *start* lies in: a shift that begins or ends inside
    an hour (at 14:30, say) gets that hour whole or not at all, because hourly storage cannot split
    it. ``buckets(start, end)`` lists every bucket that meets a window, in order, clipped to it, so
    their durations add up to the window exactly.
    """

    def __init__(self, group_by: GroupBy | str, tz: tzinfo, calendar: ShiftCalendar | None = None):
        try:
            self.group_by = GroupBy(group_by)
        except ValueError:
            choices = ", ".join(g.value for g in GroupBy)
            raise ValueError(f"group_by must be one of {choices}, not {group_by!r}") from None
        self.tz = tz
        self.calendar = calendar if calendar is not None else ShiftCalendar()
        self._blocks: dict[int, tuple[list[int], list[Bucket]]] = {}
        self._last: Bucket | None = None  # reports ask hour after hour: most land in the same bucket

    def bucket_of(self, hour_start_ns: int) -> Bucket:
        """The bucket that contains the instant (for hourly rollups: the hour's start), unclipped."""
        last = self._last
        if last is not None and last.start_ns <= hour_start_ns < last.end_ns:
            return last
        self._last = self._bucket_of(hour_start_ns)
        return self._last

    def buckets(self, start_ns: int, end_ns: int) -> list[Bucket]:
        """Every bucket that meets ``[start_ns, end_ns)``, in order, clipped to it; they tile it exactly."""
        if end_ns <= start_ns:
            return []
        if self.group_by == GroupBy.SHIFT:
            first = _local_date(start_ns, self.tz) - timedelta(days=_MARGIN_DAYS)
            last = _local_date(end_ns, self.tz) + timedelta(days=_MARGIN_DAYS)
            whole = [b for b in self._shift_segments(first, last) if b.end_ns > start_ns and b.start_ns < end_ns]
        else:
            whole, t = [], start_ns
            while t < end_ns:
                whole.append(self.bucket_of(t))
                t = whole[-1].end_ns
        return [_clipped(b, start_ns, end_ns) for b in whole]

    # -- internals ---------------------------------------------------------------------------------

    def _bucket_of(self, t: int) -> Bucket:
        if self.group_by == GroupBy.HOUR:
            start = t - t % HOUR_NS
            # Whole seconds, so fromtimestamp is exact; and a year of hours asks this 8,760 times.
            key = datetime.fromtimestamp(start // NS_PER_S, self.tz).isoformat(timespec="minutes")
            end = datetime.fromtimestamp(start // NS_PER_S + 3600, self.tz)
            return Bucket(key, start, start + HOUR_NS, f"{key[:10]} {key[11:16]}-{end.hour:02d}:{end.minute:02d}")
        if self.group_by == GroupBy.SHIFT:
            return self._shift_bucket(t)
        day = _local_date(t, self.tz)
        if self.group_by == GroupBy.DAY:
            key = day.isoformat()
            return Bucket(key, *self._days_ns(day, day + _ONE_DAY), f"{_DAY_NAMES[day.weekday()]} {key}")
        if self.group_by == GroupBy.WEEK:
            monday = day - timedelta(days=day.weekday())
            year, week, _ = monday.isocalendar()
            sunday = monday + timedelta(days=6)
            key = f"{year}-W{week:02d}"
            return Bucket(key, *self._days_ns(monday, monday + timedelta(days=7)), f"{key}: {monday} to {sunday}")
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Bucket(
            f"{first:%Y-%m}", *self._days_ns(first, following), f"{_MONTH_NAMES[first.month - 1]} {first.year}"
        )

    def _days_ns(self, first: date, end: date) -> tuple[int, int]:
        return _midnight_ns(first, self.tz), _midnight_ns(end, self.tz)

    def _shift_bucket(self, t: int) -> Bucket:
        block = _local_date(t, self.tz).toordinal() // _BLOCK_DAYS
        if block not in self._blocks:
            if len(self._blocks) > 64:
                self._blocks.clear()
            first = date.fromordinal(block * _BLOCK_DAYS)
            segments = self._shift_segments(
                first - timedelta(days=_MARGIN_DAYS), first + timedelta(days=_BLOCK_DAYS - 1 + _MARGIN_DAYS)
            )
            self._blocks[block] = ([b.start_ns for b in segments], segments)
        starts, segments = self._blocks[block]
        return segments[bisect.bisect_right(starts, t) - 1]

    def _shift_segments(self, first: date, last: date) -> list[Bucket]:
        """Shift and off-shift buckets tiling local ``first`` 00:00 to ``last`` + 1 00:00.

        The first and last buckets are cut by the range itself; callers keep a margin of days.
        """
        tz = self.tz
        occurrences: list[tuple[int, int, Shift]] = []
        cuts: list[int] = []
        for day in _days(first - _ONE_DAY, last):
            shifts = self.calendar.shifts_on(day)
            if not shifts and day >= first:
                cuts.append(_midnight_ns(day, tz))
            for shift in shifts:
                begin, end = shift.bounds_on(day)
                occurrences.append((_local_to_ns(begin, tz), _local_to_ns(end, tz), shift))
        lo, hi = _midnight_ns(first, tz), _midnight_ns(last + _ONE_DAY, tz)
        out: list[Bucket] = []
        cursor = lo

        def off_shift_until(until: int) -> None:
            nonlocal cursor
            for point in [*(c for c in cuts if cursor < c < until), until]:
                if point > cursor:
                    out.append(self._named(OFF_SHIFT, cursor, point))
                    cursor = point

        for begin_ns, end_ns, shift in sorted(occurrences, key=lambda o: o[0]):
            begin_ns, end_ns = max(begin_ns, cursor), min(end_ns, hi)
            if end_ns <= begin_ns:
                continue  # before the range, or squeezed out by a DST change
            off_shift_until(begin_ns)
            out.append(self._named(shift.name, begin_ns, end_ns))
            cursor = end_ns
        off_shift_until(hi)
        return out

    def _named(self, name: str, start_ns: int, end_ns: int) -> Bucket:
        start = _ns_to_datetime(start_ns).astimezone(self.tz)
        end = _ns_to_datetime(end_ns).astimezone(self.tz)
        head = f"{_DAY_NAMES[start.weekday()]} {start:%Y-%m-%d %H:%M}"
        tail = f"{end:%H:%M}" if end - start <= _ONE_DAY else f"{_DAY_NAMES[end.weekday()]} {end:%Y-%m-%d %H:%M}"
        stamp = start.isoformat(timespec="minutes" if not start.second else "seconds")
        return Bucket(f"{stamp} {name}", start_ns, end_ns, f"{name}: {head}-{tail}")


def _clipped(bucket: Bucket, start_ns: int, end_ns: int) -> Bucket:
    if bucket.start_ns >= start_ns and bucket.end_ns <= end_ns:
        return bucket
    return Bucket(bucket.key, max(bucket.start_ns, start_ns), min(bucket.end_ns, end_ns), bucket.label)
