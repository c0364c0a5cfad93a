"""The business-input store: versions that never overwrite, withdrawal, as_of reads, overlaps, and
hostile values refused with their field and reason, on a real SQLite file."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from core.business import BusinessInputs, InputKind
from core.inputs import InputConflict, InputNotFound, InputRejected
from core.stores.inputs import InputStore

SITES = {"cq-demo", "cq-two"}
JAN, FEB, MAR, APR = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)
T0 = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand, so ``entered_at`` and ``as_of`` are exact."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: float = 1) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[InputStore]:
    store = InputStore(tmp_path / "inputs.sqlite", sites=SITES, clock=clock)
    yield store
    store.close()


def _problems(exc: pytest.ExceptionInfo[InputRejected]) -> dict[str, str]:
    return {p.field: p.reason for p in exc.value.problems}


def test_the_store_is_a_business_inputs_reader(store: InputStore) -> None:
    reader: BusinessInputs = store  # the protocol the certification engine uses
    assert reader.entries("cq-demo", InputKind.HEADCOUNT, JAN, APR) == []


def test_add_writes_version_1_with_who_and_when(store: InputStore) -> None:
    entry = store.add("cq-demo", InputKind.OPERATING_COST, JAN, FEB, 392.5, "January ledger", entered_by="key-a")
    assert entry.version == 1 and entry.entry_id.startswith("in-") and not entry.deleted
    assert (entry.site, entry.kind, entry.value, entry.note) == (
        "cq-demo",
        InputKind.OPERATING_COST,
        392.5,
        "January ledger",
    )
    assert entry.entered_by == "key-a" and entry.entered_at == T0
    assert store.history(entry.entry_id) == [entry]
    other = store.add("cq-demo", "operating_cost", FEB, MAR, 371, entered_by="key-a")
    assert other.entry_id != entry.entry_id and other.note == ""


def test_a_correction_is_a_new_version_and_the_old_one_stays(store: InputStore, clock: Clock) -> None:
    first = store.add("cq-demo", InputKind.HEADCOUNT, JAN, FEB, 48, "HR", entered_by="key-a")
    clock.tick()
    second = store.correct(first.entry_id, value=47, entered_by="key-b")
    clock.tick()
    third = store.correct(first.entry_id, note="HR, corrected payroll export", entered_by="key-c")
    assert [e.version for e in store.history(first.entry_id)] == [1, 2, 3]
    assert store.history(first.entry_id) == [first, second, third]  # version 1 exactly as it was
    assert (second.value, second.note, second.entered_by) == (47, "HR", "key-b")
    assert (third.value, third.note, third.entered_by) == (47, "HR, corrected payroll export", "key-c")
    assert store.entries("cq-demo", InputKind.HEADCOUNT, JAN, APR) == [third]


def test_a_correction_keeps_site_and_kind_and_is_checked_like_a_new_entry(store: InputStore) -> None:
    entry = store.add("cq-demo", InputKind.HEADCOUNT, JAN, FEB, 48, entered_by="key-a")
    with pytest.raises(InputRejected) as refused:
        store.correct(entry.entry_id, value=47.5, period_end=date(2025, 12, 1), entered_by="key-a")
    assert set(_problems(refused)) == {"value", "period_end"}
    with pytest.raises(InputRejected, match="changes nothing"):
        store.correct(entry.entry_id, value=48, entered_by="key-a")
    assert store.history(entry.entry_id) == [entry]  # nothing written by the refusals


def test_a_correction_based_on_an_old_version_is_a_conflict(store: InputStore) -> None:
    entry = store.add("cq-demo", InputKind.HEADCOUNT, JAN, FEB, 48, entered_by="key-a")
    store.correct(entry.entry_id, value=47, expected_version=1, entered_by="key-a")
    with pytest.raises(InputConflict, match="version 2, not 1"):
        store.correct(entry.entry_id, value=46, expected_version=1, entered_by="key-b")


def test_withdraw_writes_a_deleted_version_and_history_stays(store: InputStore, clock: Clock) -> None:
    entry = store.add("cq-demo", InputKind.WATER_INTAKE, JAN, FEB, 710, "invoice", entered_by="key-a")
    clock.tick()
    gone = store.withdraw(entry.entry_id, entered_by="key-b", reason="entered for the wrong month")
    assert gone.deleted and gone.version == 2 and gone.note == "entered for the wrong month"
    assert (gone.value, gone.period_start) == (710, JAN)  # what was withdrawn stays readable
    assert store.history(entry.entry_id) == [entry, gone]
    assert store.entries("cq-demo", InputKind.WATER_INTAKE, JAN, APR) == []
    assert store.list(withdrawn=True) == [gone]
    with pytest.raises(InputConflict, match="already withdrawn"):
        store.withdraw(entry.entry_id, entered_by="key-b", reason="again")
    with pytest.raises(InputConflict, match="withdrawn"):
        store.correct(entry.entry_id, value=1, entered_by="key-b")
    with pytest.raises(InputRejected, match="reason"):
        store.withdraw(
            store.add("cq-demo", "water_intake", FEB, MAR, 1, entered_by="k").entry_id, entered_by="k", reason=" "
        )
    # The withdrawn months are free again.
    assert store.add("cq-demo", InputKind.WATER_INTAKE, JAN, FEB, 700, entered_by="key-a").version == 1


def test_unknown_entry_ids_are_not_found(store: InputStore) -> None:
    for action in (
        lambda: store.history("in-0000000000000000"),
        lambda: store.correct("in-0000000000000000", value=1, entered_by="k"),
        lambda: store.withdraw("in-0000000000000000", entered_by="k", reason="r"),
    ):
        with pytest.raises(InputNotFound):
            action()


def test_as_of_reads_the_versions_that_existed_then(store: InputStore, clock: Clock) -> None:
    entry = store.add("cq-demo", InputKind.OUTPUT_VALUE, JAN, FEB, 452, entered_by="key-a")  # at T0
    before_correction = clock.tick()
    clock.tick()
    corrected = store.correct(entry.entry_id, value=455, entered_by="key-b")  # at T0 + 2 min
    before_withdrawal = clock.tick()
    clock.tick()
    store.withdraw(entry.entry_id, entered_by="key-b", reason="duplicate")  # at T0 + 4 min
    read = lambda at: store.entries("cq-demo", InputKind.OUTPUT_VALUE, JAN, FEB, as_of=at)  # noqa: E731
    assert read(T0 - timedelta(microseconds=1)) == []  # before it was entered
    assert read(T0) == [entry]
    assert read(before_correction) == [entry]
    assert read(corrected.entered_at) == [corrected]
    assert read(before_withdrawal) == [corrected]
    assert read(None) == []
    with pytest.raises(ValueError, match="time zone"):
        read(datetime(2026, 5, 1))


def test_entered_at_never_goes_backwards_even_if_the_clock_does(store: InputStore, clock: Clock) -> None:
    entry = store.add("cq-demo", InputKind.HEADCOUNT, JAN, FEB, 48, entered_by="key-a")
    clock.now = T0 - timedelta(hours=1)  # the clock is set back
    corrected = store.correct(entry.entry_id, value=47, entered_by="key-a")
    assert corrected.entered_at == T0
    assert store.entries("cq-demo", InputKind.HEADCOUNT, JAN, FEB, as_of=T0) == [corrected]


def test_entries_returns_every_live_entry_whose_period_overlaps(store: InputStore) -> None:
    jan = store.add("cq-demo", InputKind.OPERATING_COST, JAN, FEB, 392.5, entered_by="k")
    feb = store.add("cq-demo", InputKind.OPERATING_COST, FEB, MAR, 371, entered_by="k")
    store.add("cq-two", InputKind.OPERATING_COST, JAN, FEB, 10, entered_by="k")  # another site
    store.add("cq-demo", InputKind.VALUE_ADDED, JAN, FEB, 138, entered_by="k")  # another kind
    cost = lambda s, e: store.entries("cq-demo", InputKind.OPERATING_COST, s, e)  # noqa: E731
    assert cost(JAN, APR) == [jan, feb]
    assert cost(date(2026, 1, 31), date(2026, 2, 2)) == [jan, feb]  # one day of each
    assert cost(FEB, MAR) == [feb]  # [start, end): January ends where February starts
    assert cost(MAR, APR) == []
    assert cost(date(2025, 12, 1), JAN) == []


def test_a_corrected_period_decides_the_overlap(store: InputStore) -> None:
    entry = store.add("cq-demo", InputKind.OPERATING_COST, JAN, FEB, 392.5, entered_by="k")
    store.correct(entry.entry_id, period_start=MAR, period_end=APR, entered_by="k")
    assert store.entries("cq-demo", InputKind.OPERATING_COST, JAN, FEB) == []
    assert [e.version for e in store.entries("cq-demo", InputKind.OPERATING_COST, MAR, APR)] == [2]


def test_an_entry_overlapping_a_live_one_of_the_same_site_and_kind_is_refused(store: InputStore) -> None:
    quarter = store.add("cq-demo", InputKind.OPERATING_COST, JAN, APR, 1169, entered_by="k")
    with pytest.raises(InputRejected) as refused:
        store.add("cq-demo", InputKind.OPERATING_COST, FEB, MAR, 371, entered_by="k")
    reason = _problems(refused)["period"]
    assert quarter.entry_id in reason and "counted twice" in reason
    other = store.add("cq-demo", InputKind.OPERATING_COST, APR, date(2026, 5, 1), 296, entered_by="k")
    with pytest.raises(InputRejected, match="overlaps"):
        store.correct(other.entry_id, period_start=MAR, entered_by="k")
    # Development projects run side by side; only the same project twice is refused.
    store.add("cq-demo", InputKind.DEV_PROJECT, JAN, MAR, None, "P-101", entered_by="k")
    store.add("cq-demo", InputKind.DEV_PROJECT, JAN, MAR, None, "P-102", entered_by="k")
    with pytest.raises(InputRejected, match="same project"):
        store.add("cq-demo", InputKind.DEV_PROJECT, JAN, MAR, None, "P-101", entered_by="k")


def test_add_many_stores_all_or_nothing(store: InputStore) -> None:
    from core.inputs import draft

    good = draft("cq-demo", "headcount", JAN, FEB, 48, "", SITES, line=2)
    clash = draft("cq-demo", "headcount", date(2026, 1, 15), MAR, 47, "", SITES, line=3)
    with pytest.raises(InputRejected) as refused:
        store.add_many([good, clash], "k")
    [problem] = refused.value.problems
    assert problem.line == 3 and "line 2" in problem.reason
    assert store.list() == []


def test_a_dev_project_value_is_its_length_in_days(store: InputStore) -> None:
    project = store.add(
        "cq-demo", InputKind.DEV_PROJECT, date(2026, 1, 5), date(2026, 3, 30), None, "P-101", entered_by="k"
    )
    assert project.value == 84  # 26 days of January + 28 of February + 30 of March (the launch day not counted)
    with pytest.raises(InputRejected) as refused:
        store.add("cq-demo", InputKind.DEV_PROJECT, JAN, FEB, 40, "P-102", entered_by="k")
    assert "31, not 40" in _problems(refused)["value"]
    moved = store.correct(project.entry_id, period_end=date(2026, 3, 20), entered_by="k")
    assert moved.value == 74  # follows the corrected launch date


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        ("operating_cost", math.nan, "not a finite number"),
        ("operating_cost", math.inf, "not a finite number"),
        ("operating_cost", -math.inf, "not a finite number"),
        ("operating_cost", 1e30, "above the sane bound"),
        ("operating_cost", 10**400, "above the sane bound"),  # compared as an integer, no OverflowError
        ("operating_cost", -0.01, "below the range"),
        ("value_added", "12", "not a number"),
        ("output_value", True, "not a number"),
        ("headcount", 47.5, "whole number"),
        ("headcount", -1, "below the range"),
        ("headcount", 2_000_000, "above the sane bound"),
        ("digital_rd_tool_rate", 1.2, "above the sane bound"),
        ("digital_rd_tool_rate", -0.1, "below the range"),
        ("land_area", 0, "must be above 0"),
        ("land_area", 18_000, "above the sane bound"),  # m² typed into a field of km²
        ("recognised_digital_workshops", 2.5, "whole number"),
        ("water_intake", 1e11, "above the sane bound"),
        ("purchased_heat", math.nan, "not a finite number"),
        ("value_added", None, "missing"),
    ],
)
def test_hostile_values_are_refused_with_the_field_and_reason(
    store: InputStore, kind: str, value: object, reason: str
) -> None:
    with pytest.raises(InputRejected) as refused:
        store.add("cq-demo", kind, JAN, FEB, value, entered_by="k")  # type: ignore[arg-type]
    assert list(_problems(refused)) == ["value"]
    assert reason in _problems(refused)["value"]
    assert store.list() == []


@pytest.mark.parametrize(
    ("start", "end", "field", "reason"),
    [
        (date(1, 1, 1), FEB, "period_start", "0001-01-01 is outside the years 1900-2200"),
        (JAN, date(9999, 12, 31), "period_end", "9999-12-31 is outside the years 1900-2200"),
        (date(1899, 12, 31), FEB, "period_start", "outside the years"),
        (FEB, JAN, "period_end", "must be after period_start"),
        (JAN, JAN, "period_end", "must be after period_start"),
        (datetime(2026, 1, 1, 8, 0), FEB, "period_start", "without a time"),
        ("2026-01-01", FEB, "period_start", "is not a date"),
    ],
)
def test_bad_periods_are_refused(store: InputStore, start: object, end: object, field: str, reason: str) -> None:
    with pytest.raises(InputRejected) as refused:
        store.add("cq-demo", "headcount", start, end, 48, entered_by="k")  # type: ignore[arg-type]
    assert reason in _problems(refused)[field]


def test_unknown_site_and_kind_huge_note_and_nameless_author_are_refused(store: InputStore) -> None:
    with pytest.raises(InputRejected) as refused:
        store.add("elsewhere" * 1000, "happiness", JAN, FEB, 1, "x" * 1001, entered_by="k")
    problems = _problems(refused)
    assert "unknown site 'elsewhereelsewhere" in problems["site"] and "known: cq-demo, cq-two" in problems["site"]
    assert len(problems["site"]) < 200  # the 9,000-character id is not echoed back
    assert "unknown kind 'happiness'" in problems["kind"] and "value_added" in problems["kind"]
    assert problems["note"] == "1001 characters; at most 1000"
    with pytest.raises(InputRejected, match="control characters"):
        store.add("cq-demo", "headcount", JAN, FEB, 48, "bell\x07", entered_by="k")
    for nobody in ("", "  ", "a\nb", "x" * 129):
        with pytest.raises(InputRejected, match="entered_by"):
            store.add("cq-demo", "headcount", JAN, FEB, 48, entered_by=nobody)
    assert store.add("cq-demo", "headcount", JAN, FEB, 48, "重庆 · 2 shifts\n\tnight", entered_by="k").note.startswith(
        "重庆"
    )


def _raw(store: InputStore) -> sqlite3.Connection:
    return sqlite3.connect(store.path, isolation_level=None)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE input_versions SET value = 1",
        "UPDATE input_versions SET deleted = 1 WHERE version = 1",
        "DELETE FROM input_versions",
        "INSERT OR REPLACE INTO input_versions SELECT entry_id, version, site, kind, period_start, period_end,"
        " 1.0, note, entered_by, entered_at_us, deleted FROM input_versions",
        "INSERT INTO input_versions SELECT entry_id, 5, site, kind, period_start, period_end, value, note,"
        " entered_by, entered_at_us, deleted FROM input_versions",  # skips versions 2-4
        "INSERT INTO input_versions SELECT entry_id, 2, 'cq-two', kind, period_start, period_end, value, note,"
        " entered_by, entered_at_us, deleted FROM input_versions",  # moves the entry to another site
        "INSERT INTO input_versions (entry_id, version, site, kind, period_start, period_end, value, note, entered_by,"
        " entered_at_us, deleted) SELECT entry_id, version, site, kind, period_start, period_end, value, note,"
        " entered_by, entered_at_us, deleted FROM input_versions WHERE true ON CONFLICT DO UPDATE SET value = 1",
    ],
)
def test_the_file_itself_refuses_to_rewrite_history(store: InputStore, statement: str) -> None:
    entry = store.add("cq-demo", "headcount", JAN, FEB, 48, entered_by="k")
    conn = _raw(store)
    try:
        with pytest.raises(sqlite3.DatabaseError, match=r"append-only|may not change"):
            conn.execute(statement)
    finally:
        conn.close()
    assert store.history(entry.entry_id) == [entry]


def test_versions_survive_reopening_the_file(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "inputs.sqlite"
    first = InputStore(path, sites=SITES, clock=clock)
    entry = first.add("cq-demo", "headcount", JAN, FEB, 48, entered_by="k")
    corrected = first.correct(entry.entry_id, value=47, entered_by="k")
    first.close()
    again = InputStore(path, sites=SITES, clock=clock)
    try:
        assert again.history(entry.entry_id) == [entry, corrected]
    finally:
        again.close()


def test_list_filters_and_orders_by_period(store: InputStore) -> None:
    feb = store.add("cq-demo", "headcount", FEB, MAR, 47, entered_by="k")
    jan = store.add("cq-demo", "headcount", JAN, FEB, 48, entered_by="k")
    two = store.add("cq-two", "headcount", JAN, FEB, 12, entered_by="k")
    assert store.list() == [jan, two, feb]
    assert store.list(site="cq-demo") == [jan, feb]
    assert store.list(kind="headcount", start=FEB) == [feb]
    assert store.list(end=FEB) == [jan, two]
    assert store.list(limit=1) == [jan]
    assert store.latest(feb.entry_id) == feb


def test_every_input_kind_has_its_bounds_and_unit() -> None:
    # A kind added to core.business without bounds here would be a KeyError (a 500) at the first entry.
    from core.business import INPUT_UNIT, InputKind
    from core.inputs import KIND_RULES

    assert set(KIND_RULES) == set(InputKind) == set(INPUT_UNIT)
