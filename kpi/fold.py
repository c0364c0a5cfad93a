"""One equipment, one hour at a time: readings and what was known at the start -> base quantities and the carry.

Both read paths use this one function: the worker and backfill store its results as hourly rollups,
and a report computes the hours it cannot read from rollups with it, so the two cannot disagree.

What the evidence rules say (kpi.md sections 3 and 6, and the issue that asked for them):

* **Known only while someone is listening.** A reading is valid for at most ``stale_ns`` (the
  equipment's report interval × ``gap_intervals``) after its timestamp. The edge re-reports every
  signal at least once per report interval, so a longer silence is offline time (a data gap that
  lowers coverage), never the last state stretched over it.
* **A counter after a gap is a new baseline.** A reading whose predecessor of the same series is
  older than ``stale_ns`` adds nothing, whether it went up or down: neither the time nor the parts
  of a gap are counted, so a restarted machine or simulator on an old store gives no phantom parts.
* **A decrease is a reset** (the new reading is the increment); counters of one equipment that
  drop within ``reset_group_s`` of each other in one hour are one reset event. A meter register
  that drops from the top tenth of its configured width (``register_max``) rolled over instead.
* **Implausible steps are excluded and counted.** A part-counter step beyond
  ``max_rate_factor`` × elapsed / ideal cycle time (+1), or beyond a hard bound, is left out.

Times are integer nanoseconds; the function is pure (no clock, no I/O).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core.signals import MachineState, Signal
from core.store import FieldValue
from kpi.base import NS_PER_S
from kpi.timemodel import TimeElement, time_element

Reading = tuple[int, FieldValue]  # (time_ns, value), usable readings only (not flagged bad)

_ELEMENT_FIELD = {
    TimeElement.APT: "production_time_s",
    TimeElement.AUST: "setup_time_s",
    TimeElement.ADET: "down_time_s",
    TimeElement.ADOT: "idle_time_s",
    TimeElement.PDOT: "planned_downtime_s",
}
COUNTER_FIELD = {
    Signal.PARTS_TOTAL.value: "parts_produced",
    Signal.PARTS_GOOD.value: "parts_good",
    Signal.PARTS_SCRAP.value: "parts_scrap",
    Signal.PARTS_REWORK.value: "parts_rework",
    Signal.PARTS_FIRST_PASS.value: "parts_first_pass",
}
# Signals every production equipment is expected to report (the upload rate's denominator).
EXPECTED_PRODUCTION_SIGNALS = (Signal.STATE.value, Signal.PARTS_TOTAL.value, Signal.PARTS_GOOD.value)
ROLLOVER_ZONE = 0.9  # a register that drops from above this share of its width rolled over


@dataclass(frozen=True, slots=True)
class EvidenceRules:
    """When a reading is evidence, and when a counter step is believable (settings ``kpi.*``)."""

    gap_intervals: float = 3.0
    max_rate_factor: float = 3.0
    max_parts_step: int = 1_000_000
    max_register_step: float = 1e9
    reset_group_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("gap_intervals", "max_rate_factor", "max_parts_step", "max_register_step"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if not (math.isfinite(self.reset_group_s) and self.reset_group_s >= 0):
            raise ValueError(f"reset_group_s must be a finite number >= 0, got {self.reset_group_s!r}")


@dataclass(frozen=True, slots=True)
class Profile:
    """What the fold needs to know about one equipment, from the asset model."""

    equipment: str
    report_interval_ns: int
    stale_ns: int
    ideal_cycle_time_s: float | None = None
    register: str | None = None  # for a meter: its register signal, which is also its consumption field
    register_max: float | None = None

    @property
    def is_meter(self) -> bool:
        return self.register is not None


@dataclass(frozen=True, slots=True)
class Carry:
    """The last usable readings of one equipment at an instant; the fold decides whether they are stale."""

    state: tuple[int, str] | None = None
    counters: Mapping[str, tuple[int, float]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "state": list(self.state) if self.state else None,
                "counters": {k: list(v) for k, v in self.counters.items()},
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Carry:
        data = json.loads(text)
        state = data.get("state")
        return cls(
            state=(int(state[0]), str(state[1])) if state else None,
            counters={str(k): (int(t), float(v)) for k, (t, v) in data.get("counters", {}).items()},
        )


@dataclass(frozen=True, slots=True)
class HourResult:
    fields: dict[str, float]
    carry: Carry


def _state_of(value: FieldValue | None) -> MachineState | None:
    # A value that is not a canonical state cannot be placed in the time model: it is no data.
    return MachineState(value) if isinstance(value, str) and value in MachineState.__members__ else None


def valid_spans(
    readings: Sequence[Reading], prior: Reading | None, stale_ns: int, start_ns: int, end_ns: int
) -> list[tuple[int, int, FieldValue]]:
    """(from, to, value) inside [start, end) where a value was known.

    Each reading holds until the next one, for at most ``stale_ns``; ``prior`` is the last reading
    before ``start`` (it holds into the window if it is recent enough).
    """
    spans: list[tuple[int, int, FieldValue]] = []
    current = prior
    for reading in readings:
        if current is not None:
            a, b = max(current[0], start_ns), min(reading[0], current[0] + stale_ns, end_ns)
            if b > a:
                spans.append((a, b, current[1]))
        current = reading
    if current is not None:
        a, b = max(current[0], start_ns), min(end_ns, current[0] + stale_ns)
        if b > a:
            spans.append((a, b, current[1]))
    return spans


def _covered_ns(spans: Sequence[tuple[int, int, object]]) -> int:
    return sum(b - a for a, b, _ in spans)


def _split_by_working(a: int, b: int, working: Sequence[tuple[int, int]] | None) -> tuple[int, int]:
    """(inside shifts, outside shifts) nanoseconds of [a, b); no calendar: all of it is inside."""
    if working is None:
        return b - a, 0
    inside = sum(max(0, min(b, w1) - max(a, w0)) for w0, w1 in working)
    return inside, (b - a) - inside


def _slots_received(times: Sequence[int], interval_ns: int, start_ns: int, end_ns: int) -> float:
    """Report intervals covered by readings: each reading vouches for one interval from its time."""
    covered = 0
    reach = start_ns
    for t in times:
        a, b = max(t, reach), min(t + interval_ns, end_ns)
        if b > a:
            covered += b - a
            reach = b
    return covered / interval_ns


def _step_limit(profile: Profile, rules: EvidenceRules, elapsed_ns: int) -> float:
    if profile.is_meter:
        return rules.max_register_step
    limit = float(rules.max_parts_step)
    if profile.ideal_cycle_time_s:
        limit = min(limit, rules.max_rate_factor * (elapsed_ns / NS_PER_S) / profile.ideal_cycle_time_s + 1)
    return limit


def _add(into: dict[str, float], name: str, amount: float) -> None:
    if amount:
        into[name] = into.get(name, 0) + amount


def _numbers(readings: Sequence[Reading]) -> list[tuple[int, float]]:
    out = []
    for t, v in readings:
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        number = float(v)
        if math.isfinite(number):
            out.append((t, number))
    return out


def _fold_counter(
    profile: Profile,
    rules: EvidenceRules,
    readings: Sequence[tuple[int, float]],
    prior: tuple[int, float] | None,
    fields: dict[str, float],
    into: str,
    resets: list[int],
) -> tuple[int, float] | None:
    """Add one counter's increments to ``fields[into]``; returns its last reading (the next prior)."""
    last = prior
    for t, value in readings:
        if last is None or t - last[0] > profile.stale_ns:
            last = (t, value)  # first reading, or the first after a gap: a new baseline
            continue
        step = value - last[1]
        if step < 0:
            top = profile.register_max
            if top is not None and last[1] >= ROLLOVER_ZONE * top and value <= top:
                step = (top - last[1]) + value
                _add(fields, "rollovers", 1)
            else:
                step = value  # counted from zero since the reset; never a negative increment
                resets.append(t)
        if step > _step_limit(profile, rules, t - last[0]):
            _add(fields, "excluded_steps", 1)
        else:
            _add(fields, into, step)
        last = (t, value)
    return last


def fold_hour(
    profile: Profile,
    rules: EvidenceRules,
    carry: Carry,
    readings: Mapping[str, Sequence[Reading]],
    start_ns: int,
    end_ns: int,
    working: Sequence[tuple[int, int]] | None = None,
) -> HourResult:
    """Base quantity fields of [start, end) (within one UTC hour) and the carry at its end.

    ``readings`` are the usable readings inside [start, end) per signal, sorted by time; ``carry``
    is what was known at ``start``; ``working`` the calendar's working spans in the window (None:
    no calendar, the equipment is meant to work around the clock).
    """
    fields: dict[str, float] = {"expected_s": (end_ns - start_ns) / NS_PER_S}
    counters = dict(carry.counters)
    resets: list[int] = []
    stale = profile.stale_ns

    if profile.is_meter:
        assert profile.register is not None
        register = _numbers(readings.get(profile.register, ()))
        prior = counters.get(profile.register)
        spans = valid_spans(register, prior, stale, start_ns, end_ns)
        fields["covered_s"] = _covered_ns(spans) / NS_PER_S
        last = _fold_counter(profile, rules, register, prior, fields, profile.register, resets)
        if last is not None:
            counters[profile.register] = last
        fields["samples"] = len(register)
        expected_signals: Sequence[str] = (profile.register,)
    else:
        states = readings.get(Signal.STATE.value, ())
        state_prior = carry.state
        spans = valid_spans(states, state_prior, stale, start_ns, end_ns)
        covered = 0
        for a, b, value in spans:
            state = _state_of(value)
            if state is None:
                continue
            covered += b - a
            inside, outside = _split_by_working(a, b, working)
            _add(fields, _ELEMENT_FIELD[time_element(state)], inside / NS_PER_S)
            # Outside shifts nobody planned to work: it is planned downtime, unless the machine ran.
            outside_field = "production_time_s" if state is MachineState.PRODUCING else "planned_downtime_s"
            _add(fields, outside_field, outside / NS_PER_S)
        fields["covered_s"] = covered / NS_PER_S
        # Failures: entries into DOWN; a DOWN refreshed without a gap is the same failure.
        previous = state_prior
        for t, value in states:
            if _state_of(value) is MachineState.DOWN:
                continuing = (
                    previous is not None and _state_of(previous[1]) is MachineState.DOWN and t - previous[0] <= stale
                )
                if not continuing:
                    _add(fields, "failures", 1)
            previous = (t, str(value))
        if states:
            last_state = states[-1]
            carry_state: tuple[int, str] | None = (last_state[0], str(last_state[1]))
        else:
            carry_state = carry.state
        samples = len(states)
        counter_spans: dict[str, int] = {}
        for signal, into in COUNTER_FIELD.items():
            series = _numbers(readings.get(signal, ()))
            prior_reading = counters.get(signal)
            counter_spans[signal] = _covered_ns(valid_spans(series, prior_reading, stale, start_ns, end_ns))
            last = _fold_counter(profile, rules, series, prior_reading, fields, into, resets)
            if last is not None:
                counters[signal] = last
            samples += len(series)
        fields["counter_covered_s"] = (
            min(counter_spans[Signal.PARTS_TOTAL.value], counter_spans[Signal.PARTS_GOOD.value]) / NS_PER_S
        )
        fields["first_pass_covered_s"] = (
            min(counter_spans[Signal.PARTS_TOTAL.value], counter_spans[Signal.PARTS_FIRST_PASS.value]) / NS_PER_S
        )
        fields["samples"] = samples
        if profile.ideal_cycle_time_s:
            _add(fields, "ideal_time_s", profile.ideal_cycle_time_s * fields.get("parts_produced", 0))
        expected_signals = EXPECTED_PRODUCTION_SIGNALS

    # Reset events: counters of one equipment that drop within reset_group_s of each other are one.
    group_ns = int(rules.reset_group_s * NS_PER_S)
    last_reset: int | None = None
    for t in sorted(resets):
        if last_reset is None or t - last_reset > group_ns:
            _add(fields, "counter_resets", 1)
        last_reset = t

    interval = profile.report_interval_ns
    fields["expected_samples"] = len(expected_signals) * (end_ns - start_ns) / interval
    fields["received_samples"] = sum(
        _slots_received([t for t, _ in readings.get(signal, ())], interval, start_ns, end_ns)
        for signal in expected_signals
    )
    new_carry = Carry(state=carry.state if profile.is_meter else carry_state, counters=counters)
    return HourResult(fields, new_carry)
