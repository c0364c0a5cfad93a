"""Repeated warnings: the first of a kind at once, the repeats as one count per interval."""

from __future__ import annotations

import logging

import pytest

from core.once import MAX_KINDS, RepeatedWarnings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_thousand_repeats_become_two_lines(caplog: pytest.LogCaptureFixture, clock: Clock) -> None:
    caplog.set_level(logging.DEBUG, logger="test.repeats")
    repeats = RepeatedWarnings(logging.getLogger("test.repeats"), 60, clock)
    for n in range(1000):
        clock.now = n * 0.05
        repeats.warn("gw-1: samples[].value", "dead letter %d", n)
    assert warnings_logged(caplog) == ["dead letter 0"]
    clock.now = 61
    repeats.warn("gw-2: payload is not JSON", "other")
    summary = "999 more like 'gw-1: samples[].value' in the last 61 s"
    assert warnings_logged(caplog) == ["dead letter 0", summary, "other"]


def test_kinds_are_counted_apart_and_flush_reports_what_is_pending(
    caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    caplog.set_level(logging.INFO, logger="test.repeats")
    repeats = RepeatedWarnings(logging.getLogger("test.repeats"), 60, clock)
    for kind in ("a", "b", "a", "a", "b"):
        repeats.warn(kind, "warning %s", kind)
    repeats.flush()
    repeats.flush()  # nothing twice
    assert warnings_logged(caplog) == [
        "warning a",
        "warning b",
        "2 more like 'a' in the last 0 s",
        "1 more like 'b' in the last 0 s",
    ]


def test_the_number_of_kinds_tracked_is_bounded(caplog: pytest.LogCaptureFixture, clock: Clock) -> None:
    caplog.set_level(logging.INFO, logger="test.repeats")
    repeats = RepeatedWarnings(logging.getLogger("test.repeats"), 60, clock)
    repeats.warn("first", "first")
    repeats.warn("first", "first again")
    for n in range(MAX_KINDS):
        repeats.warn(f"made-up-{n}", "made up")
    assert "1 more like 'first' in the last 0 s" in warnings_logged(caplog)
    repeats.warn("first", "first after eviction")
    assert warnings_logged(caplog)[-1] == "first after eviction"
