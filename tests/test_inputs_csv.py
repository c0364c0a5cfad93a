"""CSV import of business inputs: the demo file, every kind of bad row with its line, all-or-nothing,
BOM and CRLF, limits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from core.business import InputKind
from core.inputs import MAX_PROBLEMS, InputFileTooLarge, InputOutOfScope, InputRejected
from core.inputs_csv import CSV_HEADER, import_inputs_csv, parse_inputs_csv
from core.stores.inputs import InputStore

REPO = Path(__file__).resolve().parent.parent
DEMO_CSV = REPO / "config" / "demo-inputs.csv"
SITES = {"cq-demo", "cq-two"}
GOOD = "cq-demo,operating_cost,2026-01-01,2026-02-01,392.5,January ledger"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InputStore]:
    store = InputStore(tmp_path / "inputs.sqlite", sites=SITES)
    yield store
    store.close()


def _csv(*rows: str, header: str = CSV_HEADER, newline: str = "\n") -> bytes:
    return newline.join([header, *rows, ""]).encode()


def _refusal(data: bytes, **kwargs: object) -> list[tuple[int | None, str, str]]:
    with pytest.raises(InputRejected) as refused:
        parse_inputs_csv(data, SITES, **kwargs)  # type: ignore[arg-type]
    return [(p.line, p.field, p.reason) for p in refused.value.problems]


def test_the_demo_file_imports_whole_with_the_improvement_it_is_meant_to_show(store: InputStore) -> None:
    entries = import_inputs_csv(store, DEMO_CSV.read_bytes(), entered_by="cli:test")
    assert len(entries) == 38 and all(e.version == 1 and e.entered_by == "cli:test" for e in entries)
    q1, q2 = (date(2026, 1, 1), date(2026, 4, 1)), (date(2026, 4, 1), date(2026, 7, 1))

    def total(kind: InputKind, period: tuple[date, date]) -> float:
        return sum(e.value for e in store.entries("cq-demo", kind, *period))

    # Operating cost 392.5 + 371 + 405.5 = 1169 -> 296 + 289 + 302 = 887: 887 / 1169 = 0.759, a fall of 24.1 %
    # (more than 20 % per unit as long as the output does not shrink; it grows 1356 -> 1625, +19.8 %).
    assert total(InputKind.OPERATING_COST, q1) == 1169 and total(InputKind.OPERATING_COST, q2) == 887
    assert total(InputKind.OUTPUT_VALUE, q1) == 1356 and total(InputKind.OUTPUT_VALUE, q2) == 1625
    # Development cycle: projects of 84, 74, 71 days (mean 76.33) -> 49, 50, 46 days (mean 48.33),
    # 48.33 / 76.33 = 0.633, a fall of 36.7 %. Each project lies inside its period.
    base = [e.value for e in store.entries("cq-demo", InputKind.DEV_PROJECT, *q1)]
    assess = [e.value for e in store.entries("cq-demo", InputKind.DEV_PROJECT, *q2)]
    assert sorted(base) == [71, 74, 84] and sorted(assess) == [46, 49, 50]
    assert (sum(assess) / 3) / (sum(base) / 3) < 0.7
    assert {e.kind for e in entries} == {
        InputKind.VALUE_ADDED,
        InputKind.OUTPUT_VALUE,
        InputKind.OPERATING_COST,
        InputKind.HEADCOUNT,
        InputKind.LAND_AREA,
        InputKind.DEV_PROJECT,
        InputKind.WATER_INTAKE,
    }
    assert any("春节" in e.note for e in entries)  # UTF-8 notes
    # Importing the same file again would count every month twice: refused whole, line by line.
    with pytest.raises(InputRejected) as again:
        import_inputs_csv(store, DEMO_CSV.read_bytes(), entered_by="cli:test")
    assert again.value.total == 38 and again.value.problems[0].line == 2
    assert len(store.list()) == 38


def test_bom_crlf_blank_lines_any_column_order_and_no_note_column(store: InputStore) -> None:
    data = "\ufeff" + "\r\n".join(
        [
            "Kind , Site,period_start,period_end,value",
            "",
            ",,,,",  # a blank row as spreadsheets export it
            "headcount,cq-demo,2026-01-01,2026-02-01,48",
            "dev_project,cq-demo,2026-01-05,2026-03-30,",  # empty: the project's length
            "",
        ]
    )
    headcount, project = import_inputs_csv(store, data.encode(), entered_by="k")
    assert (headcount.kind, headcount.value, headcount.note) == (InputKind.HEADCOUNT, 48, "")
    assert project.value == 84


def test_a_quoted_note_may_hold_commas_quotes_and_line_breaks(store: InputStore) -> None:
    data = _csv('cq-demo,headcount,2026-01-01,2026-02-01,48,"HR, monthly ""average""\r\nsecond line"', newline="\r\n")
    [entry] = import_inputs_csv(store, data, entered_by="k")
    assert entry.note == 'HR, monthly "average"\r\nsecond line'


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ("cq-elsewhere,headcount,2026-01-01,2026-02-01,48,", "site", "unknown site 'cq-elsewhere'"),
        ("cq-demo,happiness,2026-01-01,2026-02-01,48,", "kind", "unknown kind 'happiness'"),
        ("cq-demo,headcount,2026/01/01,2026-02-01,48,", "period_start", "not a date written YYYY-MM-DD"),
        ("cq-demo,headcount,2026-02-30,2026-03-01,48,", "period_start", "not a calendar date"),
        ("cq-demo,headcount,0001-01-01,2026-02-01,48,", "period_start", "outside the years 1900-2200"),
        ("cq-demo,headcount,2026-01-01,9999-01-01,48,", "period_end", "outside the years 1900-2200"),
        ("cq-demo,headcount,2026-01-01,10000-01-01,48,", "period_end", "not a date written YYYY-MM-DD"),
        ("cq-demo,headcount,2026-02-01,2026-01-01,48,", "period_end", "must be after period_start"),
        ("cq-demo,headcount,2026-01-01,2026-02-01,NaN,", "value", "'NaN' is not a number"),
        ("cq-demo,headcount,2026-01-01,2026-02-01,inf,", "value", "'inf' is not a number"),
        ("cq-demo,headcount,2026-01-01,2026-02-01,-Infinity,", "value", "not a number"),
        ("cq-demo,operating_cost,2026-01-01,2026-02-01,1e30,", "value", "above the sane bound"),
        ("cq-demo,operating_cost,2026-01-01,2026-02-01,1e999,", "value", "too large to be a finite number"),
        ("cq-demo,operating_cost,2026-01-01,2026-02-01,1_000,", "value", "not a number"),
        ("cq-demo,operating_cost,2026-01-01,2026-02-01,0x10,", "value", "not a number"),
        ("cq-demo,operating_cost,2026-01-01,2026-02-01,-5,", "value", "below the range"),
        ("cq-demo,operating_cost,2026-01-01,2026-02-01,,", "value", "missing"),
        ("cq-demo,headcount,2026-01-01,2026-02-01,47.5,", "value", "whole number"),
        ("cq-demo,digital_rd_tool_rate,2026-01-01,2026-02-01,35,", "value", "above the sane bound 1"),
        ("cq-demo,dev_project,2026-01-01,2026-02-01,30,", "value", "31, not 30"),
        ("cq-demo,headcount,2026-01-01,2026-02-01,48," + "x" * 1001, "note", "1001 characters; at most 1000"),
        ("cq-demo,headcount,2026-01-01,2026-02-01,48,a\x00b", "note", "control characters"),
        ("cq-demo,headcount,2026-01-01,2026-02-01,48,note,extra", "row", "7 fields, the header has 6"),
        ("cq-demo,headcount,2026-01-01", "row", "3 fields, the header has 6"),
    ],
)
def test_each_kind_of_bad_row_is_refused_with_its_line_field_and_reason(
    store: InputStore, row: str, field: str, reason: str
) -> None:
    data = _csv(GOOD, "", row, "cq-demo,value_added,2026-01-01,2026-02-01,138,")
    problems = _refusal(data)
    assert [(line, f) for line, f, _ in problems] == [(4, field)], problems  # line 3 is blank
    assert reason in problems[0][2]
    with pytest.raises(InputRejected):
        import_inputs_csv(store, data, entered_by="k")
    assert store.list() == []  # the good rows before and after were not stored either


def test_every_bad_row_is_listed_and_the_list_is_bounded(store: InputStore) -> None:
    rows = [GOOD] + [f"cq-demo,headcount,2026-01-01,2026-02-01,{n}.5,row {n}" for n in range(150)]
    with pytest.raises(InputRejected) as refused:
        import_inputs_csv(store, _csv(*rows), entered_by="k")
    assert refused.value.total == 150
    assert len(refused.value.problems) == MAX_PROBLEMS
    assert [p.line for p in refused.value.problems[:3]] == [3, 4, 5]
    assert "and 145 more" in str(refused.value)
    assert store.list() == []


def test_a_row_with_several_problems_reports_each(store: InputStore) -> None:
    problems = _refusal(_csv("nowhere,headcount,2026-13-01,2026-02-01,-3,"))
    assert [(line, field) for line, field, _ in problems] == [(2, "site"), (2, "period_start"), (2, "value")]


def test_rows_overlapping_each_other_or_stored_entries_are_refused_with_their_lines(store: InputStore) -> None:
    store.add("cq-demo", "operating_cost", date(2026, 3, 1), date(2026, 4, 1), 405.5, entered_by="k")
    data = _csv(
        GOOD,
        "cq-demo,operating_cost,2026-01-15,2026-02-15,10,",  # overlaps line 2
        "cq-demo,operating_cost,2026-03-01,2026-04-01,405.5,",  # already stored
        "cq-two,operating_cost,2026-01-01,2026-02-01,50,",  # another site: fine
    )
    with pytest.raises(InputRejected) as refused:
        import_inputs_csv(store, data, entered_by="k")
    lines = [(p.line, p.field) for p in refused.value.problems]
    assert lines == [(3, "period"), (4, "period")]
    assert "line 2" in refused.value.problems[0].reason
    assert len(store.list()) == 1


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (b"", 1, "empty"),
        (b"\n\n", 1, "empty"),
        (CSV_HEADER.encode() + b"\n", 2, "no rows below the header"),
        (b"site,kind,start,end,value\n", 1, "unknown column 'start'"),  # then 'end', then the missing ones
        (b"site,kind,period_start,period_end,note\n", 1, "missing column(s) value"),
        (b"site,kind,kind,period_start,period_end,value\n", 1, "'kind' appears more than once"),
        (CSV_HEADER.encode() + b"\n" + GOOD.encode() + b"\ncq-demo,h\xe9adcount\n", 3, "not UTF-8"),
        (b"\xff\xfes\x00i\x00t\x00e\x00", 1, "not UTF-8"),  # UTF-16 saved by mistake
        (b'"site,kind\n', 1, "not readable as CSV: unexpected end of data"),  # a quote never closed
    ],
)
def test_a_broken_file_is_refused_with_where_and_why(data: bytes, line: int, reason: str) -> None:
    (at, _, why), *_ = _refusal(data)
    assert at == line and reason in why


def test_size_and_row_limits(store: InputStore) -> None:
    big = _csv(*[GOOD] * 10) + b" " * 2000
    with pytest.raises(InputFileTooLarge, match="at most 1,024"):
        parse_inputs_csv(big, SITES, max_bytes=1024)
    rows = [f"cq-demo,dev_project,2026-01-01,2026-02-01,,project {n}" for n in range(6)]
    problems = _refusal(_csv(*rows), max_rows=5)
    assert problems == [(7, "file", "more than 5 rows (split the file)")]
    assert len(import_inputs_csv(store, _csv(*rows[:5]), entered_by="k", max_rows=5)) == 5


def test_a_site_scoped_import_refuses_rows_of_other_sites() -> None:
    data = _csv(GOOD, "cq-two,headcount,2026-01-01,2026-02-01,12,")
    with pytest.raises(InputOutOfScope) as refused:
        parse_inputs_csv(data, SITES, site_scope="cq-demo")
    assert [(p.line, p.field, p.reason) for p in refused.value.problems] == [
        (3, "site", "'cq-two': this import may enter inputs for site cq-demo only")
    ]
    assert len(parse_inputs_csv(data, SITES, site_scope=None)) == 2


def test_bad_values_and_overlaps_are_listed_together(store: InputStore) -> None:
    store.add("cq-demo", "operating_cost", date(2026, 3, 1), date(2026, 4, 1), 405.5, entered_by="k")
    data = _csv(
        GOOD,
        "cq-demo,headcount,2026-02-01,2026-03-01,inf,",
        "cq-demo,operating_cost,2026-03-15,2026-04-01,1,",  # overlaps the stored March
        "cq-demo,operating_cost,2026-01-15,2026-02-15,3,",  # overlaps line 2
    )
    with pytest.raises(InputRejected) as refused:
        import_inputs_csv(store, data, entered_by="k")
    assert [(p.line, p.field) for p in refused.value.problems] == [(3, "value"), (4, "period"), (5, "period")]
    assert len(store.list()) == 1


def test_the_demo_history_inputs_match_the_demo_history_weeks(store: InputStore) -> None:
    """config/scenarios/demo-history-inputs.csv: the figures of the weeks of config/scenarios/demo-history.yaml."""
    import yaml

    history = yaml.safe_load((REPO / "config" / "scenarios" / "demo-history.yaml").read_text())["history"]
    baseline = (history["baseline"]["start"], history["baseline"]["end"])
    assessment = (history["assessment"]["start"], history["assessment"]["end"])
    data = (REPO / "config" / "scenarios" / "demo-history-inputs.csv").read_bytes()
    entries = import_inputs_csv(store, data, entered_by="demo")
    assert len(entries) == 18

    def week(kind: InputKind, period: tuple[date, date]) -> list[float]:
        return [e.value for e in store.entries("cq-demo", kind, *period) if e.period_start >= period[0]]

    # Operating cost 92 -> 70.5 (10k CNY a week): 70.5 / 92 = 0.766, a fall of 23.4 %, with output up 105 -> 128.
    assert week(InputKind.OPERATING_COST, baseline) == [92] and week(InputKind.OPERATING_COST, assessment) == [70.5]
    assert week(InputKind.OUTPUT_VALUE, baseline) == [105] and week(InputKind.OUTPUT_VALUE, assessment) == [128]

    # Projects launched in each week (the launch is period_end): 85, 80, 77 days (mean 80.67) -> 50, 45, 39
    # (mean 44.67): 44.67 / 80.67 = 0.554, a fall of 44.6 %.
    def launched(period: tuple[date, date]) -> list[float]:
        projects = store.entries("cq-demo", InputKind.DEV_PROJECT, *period)
        return sorted(p.value for p in projects if period[0] <= p.period_end < period[1])

    assert launched(baseline) == [77, 80, 85] and launched(assessment) == [39, 45, 50]


def test_a_header_of_a_million_columns_is_refused_quickly() -> None:
    import time

    began = time.perf_counter()
    problems = _refusal(b"x" + b",x" * 1_000_000 + b"\n" + GOOD.encode(), max_bytes=4_000_000)
    assert time.perf_counter() - began < 5
    assert problems[0] == (1, "header", "unknown column 'x' (columns: site,kind,period_start,period_end,value,note)")
    assert len(problems) == 2  # the unknown column once, then the missing ones


def test_a_row_of_a_million_fields_is_one_problem() -> None:
    problems = _refusal(_csv(GOOD, "x" + "," * 1_000_000), max_bytes=4_000_000)
    assert problems == [(3, "row", "1000001 fields, the header has 6 (site,kind,period_start,period_end,value,note)")]


def test_a_repeated_project_in_one_file_is_refused(store: InputStore) -> None:
    project = "cq-demo,dev_project,2026-01-05,2026-03-30,,P-101"
    assert len(parse_inputs_csv(_csv(project, project), SITES)) == 2  # each row alone is fine: the repeat is a clash
    with pytest.raises(InputRejected) as refused:
        import_inputs_csv(
            store, _csv(project, "cq-demo,dev_project,2026-01-05,2026-03-30,,P-102", project), entered_by="k"
        )
    [problem] = refused.value.problems
    assert (
        (problem.line, problem.field) == (4, "period")
        and "same project" in problem.reason
        and "line 2" in problem.reason
    )


def test_ten_thousand_rows_are_checked_against_ten_thousand_entries_in_seconds(store: InputStore) -> None:
    # Each row once against the store (one query per site and kind, then a binary search) and once against
    # the file (sorted sweep): about 0.4 s each way on the development machine; quadratic took 22 s and 58 s.
    import time

    rows = [
        f"cq-demo,operating_cost,{date(1950, 1, 1) + timedelta(days=n)},{date(1950, 1, 2) + timedelta(days=n)},1.5,"
        for n in range(10_000)
    ]
    began = time.perf_counter()
    assert len(import_inputs_csv(store, _csv(*rows), entered_by="k")) == 10_000
    with pytest.raises(InputRejected) as refused:
        import_inputs_csv(store, _csv(*rows), entered_by="k")
    assert refused.value.total == 10_000
    assert time.perf_counter() - began < 10
