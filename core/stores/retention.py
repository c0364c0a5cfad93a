"""InfluxDB retention: durations as InfluxQL writes them, and the policies ``factory store setup`` keeps.

Pure functions and small values only; the statements are run by ``core.stores.influx_setup``.

A duration in the settings is an InfluxQL duration literal (``90d``, ``52w``, ``36h30m``) or
``INF`` (kept forever). InfluxDB reports durations back in Go's notation (``2160h0m0s``; ``0s`` for
forever), which ``parse_go_duration`` reads, so the two can be compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

INFINITE = "INF"
MIN_DURATION = timedelta(hours=1)  # InfluxDB refuses a shorter retention policy

_INFLUXQL_UNITS = {
    "ns": timedelta(microseconds=0.001),
    "u": timedelta(microseconds=1),
    "µ": timedelta(microseconds=1),
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_INFLUXQL_PART = re.compile(r"(\d+)(ns|ms|u|µ|s|m|h|d|w)")
_GO_UNITS = {**_INFLUXQL_UNITS, "us": timedelta(microseconds=1), "µs": timedelta(microseconds=1)}
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def _parse(text: str, part: re.Pattern[str], units: dict[str, timedelta], what: str) -> timedelta:
    total = timedelta()
    position = 0
    for match in part.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * units[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(f"{text!r} is not {what}")
    return total


def parse_duration(text: str) -> timedelta | None:
    """An InfluxQL duration literal (``90d``, ``1w2d``) as a timedelta; ``INF`` as None (forever)."""
    if text.strip().upper() == INFINITE:
        return None
    duration = _parse(text.strip(), _INFLUXQL_PART, _INFLUXQL_UNITS, "a duration such as 90d, 52w, 36h or INF")
    if duration < MIN_DURATION:
        raise ValueError(f"{text!r} is shorter than InfluxDB's shortest retention of 1h")
    return duration


def parse_go_duration(text: str) -> timedelta | None:
    """A duration as InfluxDB reports it (``2160h0m0s``); ``0s`` (InfluxDB's forever) as None."""
    duration = _parse(text, _GO_PART, _GO_UNITS, "a duration as InfluxDB reports it")
    return None if duration == timedelta() else duration


def describe(duration: timedelta | None) -> str:
    """``forever``, ``90 days``, ``36 hours``: for what setup prints."""
    if duration is None:
        return "forever"
    if duration % timedelta(days=1) == timedelta():
        return f"{duration.days} days"
    return f"{duration / timedelta(hours=1):g} hours"


def default_shard_duration(duration: timedelta | None) -> str:
    """The shard group duration InfluxDB picks for a new policy of this length (its documented rule)."""
    if duration is not None and duration < timedelta(days=2):
        return "1h"
    if duration is not None and duration <= timedelta(days=183):
        return "1d"
    return "7d"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """A policy setup keeps: its name, its duration (an InfluxQL literal) and whether it is the default."""

    name: str
    duration: str
    default: bool = False
    holds: str = ""  # what is kept there, for what setup prints: "raw points", "KPI rollups"

    @property
    def length(self) -> timedelta | None:
        return parse_duration(self.duration)


@dataclass(frozen=True, slots=True)
class ExistingPolicy:
    """A row of ``SHOW RETENTION POLICIES``."""

    name: str
    duration: timedelta | None
    shard_duration: timedelta | None
    default: bool
