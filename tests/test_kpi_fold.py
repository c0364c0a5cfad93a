"""The fold's evidence rules on hand-made hours; every expected figure is worked out beside it.

Unless a test says otherwise: a machine with a 60 s report interval, readings valid for 3 intervals
(180 s), ideal cycle time 4 s, and the hour 08:00-09:00 UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pytest

from core.signals import OFFLINE, MachineState
from core.store import FieldValue
from core.wire import datetime_to_ns
from kpi.base import NS_PER_S, BaseQuantities
from kpi.fold import Carry, EvidenceRules, Profile, fold_hour, valid_spans

T8 = datetime_to_ns(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
MIN = 60 * NS_PER_S
H = 60 * MIN
RULES = EvidenceRules()
MACHINE = Profile("cnc-01", report_interval_ns=MIN, stale_ns=3 * MIN, ideal_cycle_time_s=4.0)
METER = Profile("meter-a", report_interval_ns=MIN, stale_ns=3 * MIN, register="energy_kwh", register_max=99_999.9)
P, D, IDLE, STOP = (
    s.value for s in (MachineState.PRODUCING, MachineState.DOWN, MachineState.IDLE, MachineState.PLANNED_STOP)
)


def at(minutes: float) -> int:
    return T8 + int(minutes * MIN)


def every_minute(value: FieldValue, first: int, last: int) -> list[tuple[int, FieldValue]]:
    """The edge's refresh: one reading per minute from ``first`` to ``last`` (inclusive)."""
    return [(at(m), value) for m in range(first, last + 1)]


NOTHING_KNOWN = Carry()


def fold(
    profile: Profile,
    readings: Mapping[str, Sequence[tuple[int, FieldValue]]],
    carry: Carry = NOTHING_KNOWN,
    working: Sequence[tuple[int, int]] | None = None,
) -> BaseQuantities:
    return BaseQuantities.from_fields(fold_hour(profile, RULES, carry, readings, T8, T8 + H, working).fields)


def test_a_reading_holds_until_the_next_one_but_never_longer_than_it_stays_valid() -> None:
    # PRODUCING at 08:00, then nothing: valid 08:00-08:03 (180 s), then offline. DOWN at 08:30 and
    # every minute to 08:59: DOWN 08:30-09:00 (the last one holds to the hour's end, 08:59 + 3 min).
    spans = valid_spans([(at(0), P), *every_minute(D, 30, 59)], None, 3 * MIN, T8, T8 + H)
    assert sum(b - a for a, b, v in spans if v == P) == 3 * MIN
    assert sum(b - a for a, b, v in spans if v == D) == 30 * MIN


def test_the_last_state_is_not_stretched_over_a_gap_in_which_nothing_reported() -> None:
    # Refresh every minute 08:00-08:19 PRODUCING; the edge goes silent until 08:50, then IDLE.
    # PRODUCING 08:00-08:22 (08:19 + 3 min) = 22 min; offline 08:22-08:50 = 28 min; IDLE 08:50-09:00.
    q = fold(MACHINE, {"state": [*every_minute(P, 0, 19), *every_minute(IDLE, 50, 59)]})
    assert (q.production_time_s, q.idle_time_s) == (22 * 60, 10 * 60)
    assert (q.covered_s, q.offline_s, q.coverage) == (32 * 60, 28 * 60, pytest.approx(32 / 60))


def test_the_prior_carries_into_the_hour_only_while_it_is_valid() -> None:
    # The carry's PRODUCING at 07:58 is valid to 08:01; DOWN from 08:10: 1 min PRODUCING, 50 min DOWN.
    carry = Carry(state=(at(-2), P))
    q = fold(MACHINE, {"state": every_minute(D, 10, 59)}, carry)
    assert (q.production_time_s, q.down_time_s, q.failures) == (60, 50 * 60, 1)
    # A DOWN carried without a gap is the same failure, not a new one.
    assert fold(MACHINE, {"state": every_minute(D, 0, 59)}, Carry(state=(at(-1), D))).failures == 0


def test_a_counter_after_a_gap_is_a_new_baseline_never_production() -> None:
    # 1000 at 08:00, 1010 at 08:01 (+10); silence; 57,074 at 08:30 (after a gap: baseline, +0, whether
    # it went up or down), 57,080 at 08:31 (+6). A restarted machine on an old store adds no phantom parts.
    total = [(at(0), 1000), (at(1), 1010), (at(30), 57_074), (at(31), 57_080)]
    q = fold(MACHINE, {"parts_total": total, "parts_good": total})
    assert (q.parts_produced, q.parts_good, q.counter_resets, q.excluded_steps) == (16, 16, 0, 0)
    # ... and the carry's counter is also a baseline when it is older than the validity window.
    stale = Carry(counters={"parts_total": (at(-10), 900.0)})
    assert fold(MACHINE, {"parts_total": [(at(0), 950)]}, stale).parts_produced == 0


def test_counters_dropping_together_are_one_reset_event() -> None:
    # At 08:10 total 500 -> 3, good 480 -> 3, scrap 20 -> 0 (a power cycle): +3, +3, +0 and one event.
    # At 08:40 total drops again (3 -> 1): a second event, 30 min later. Increments: total 3 + 1 = 4.
    readings = {
        "parts_total": [(at(9), 500), (at(10), 3), (at(39), 3), (at(40), 1)],
        "parts_good": [(at(9), 480), (at(10) + 2 * NS_PER_S, 3)],
        "parts_scrap": [(at(9), 20), (at(10) + 5 * NS_PER_S, 0)],
    }
    q = fold(MACHINE, readings)
    assert (q.parts_produced, q.parts_good, q.parts_scrap, q.counter_resets) == (4, 3, 0, 2)


def test_an_increment_beyond_what_the_ideal_cycle_time_allows_is_excluded_and_counted() -> None:
    # 60 s between readings at 4 s ideal: at most 3 x 60 / 4 + 1 = 46 parts. +40 counts; +10^6 does not
    # (a counter written as 1e6 by a confused PLC), and neither does a counter of 1e300.
    total = [(at(0), 100), (at(1), 140), (at(2), 1_000_140), (at(3), 1_000_150), (at(4), 1e300)]
    q = fold(MACHINE, {"parts_total": total})
    assert (q.parts_produced, q.excluded_steps) == (40 + 10, 2)


def test_a_register_wraps_at_its_width_and_a_meter_covers_only_while_it_reports() -> None:
    # 99,999.0 -> 99,999.8 (+0.8) -> 0.5 (a drop from the top tenth of 99,999.9: rollover, +0.1 + 0.5)
    # -> 1.0 (+0.5). Readings at 08:00..08:03; the meter then goes silent: covered 08:00-08:06.
    register = [(at(0), 99_999.0), (at(1), 99_999.8), (at(2), 0.5), (at(3), 1.0)]
    q = fold(METER, {"energy_kwh": register})
    assert q.energy_kwh == pytest.approx(0.8 + 0.1 + 0.5 + 0.5)
    assert (q.rollovers, q.counter_resets, q.covered_s) == (1, 0, 6 * 60)
    # A drop from the middle of the range is a meter reset (replaced meter): the new reading counts.
    assert fold(METER, {"energy_kwh": [(at(0), 50_000.0), (at(1), 2.0)]}).counter_resets == 1


def test_outside_shifts_idle_is_planned_downtime_but_production_is_production() -> None:
    # Working 08:00-08:30 only. IDLE all hour, PRODUCING 08:20-08:40:
    # IDLE 08:00-08:20 inside -> ADOT 20 min; PRODUCING 08:20-08:30 inside + 08:30-08:40 outside -> APT
    # 20 min; IDLE 08:40-09:00 outside -> PDOT 20 min.
    states = [*every_minute(IDLE, 0, 19), *every_minute(P, 20, 39), *every_minute(IDLE, 40, 59)]
    q = fold(MACHINE, {"state": states}, working=[(at(0), at(30))])
    assert (q.idle_time_s, q.production_time_s, q.planned_downtime_s) == (20 * 60, 20 * 60, 20 * 60)


def test_upload_rate_counts_report_intervals_with_a_reading() -> None:
    # State every minute all hour (60 of 60), total every minute 08:00-08:29 (30), good never (0):
    # 90 of 3 x 60 = 180 expected.
    readings = {"state": every_minute(P, 0, 59), "parts_total": every_minute(5, 0, 29)}
    q = fold(MACHINE, readings)
    assert (q.received_samples, q.expected_samples) == (90.0, 180.0)
    assert q.counter_covered_s == 0  # no good-part counter: the counters are not known


def test_bad_values_in_counters_are_skipped_not_fatal() -> None:
    # Only 10 @08:00 and 12 @08:03 are numbers: +2 (08:03 is still within 3 min of 08:00).
    total = [(at(0), 10), (at(1), float("nan")), (at(2), "twelve"), (at(2.5), True), (at(3), 12)]
    assert fold(MACHINE, {"parts_total": total}).parts_produced == 2


def test_the_carry_round_trips_through_json_and_the_rules_refuse_nonsense() -> None:
    carry = Carry(state=(at(0), P), counters={"parts_total": (at(1), 12.0)})
    assert Carry.from_json(carry.to_json()) == carry
    with pytest.raises(ValueError, match="gap_intervals"):
        EvidenceRules(gap_intervals=0)
    with pytest.raises(ValueError, match="max_parts_step"):
        EvidenceRules(max_parts_step=float("inf"))  # type: ignore[arg-type]


def test_an_offline_marker_ends_what_was_known_at_once() -> None:
    # PRODUCING refreshed every minute 08:00-08:10, then the edge says it stopped listening at
    # 08:10:30 (its session ended). Without the marker the 08:10 reading would hold to 08:13; with
    # it, PRODUCING ends at 08:10:30 and the rest of the hour is offline. The next DOWN is a new failure.
    states = [*every_minute(P, 0, 10), (at(10.5), OFFLINE), (at(40), D)]
    q = fold(MACHINE, {"state": states})
    assert q.production_time_s == 10.5 * 60
    assert q.down_time_s == 3 * 60  # DOWN @08:40, valid 3 min
    assert (q.failures, q.covered_s) == (1, 13.5 * 60)
