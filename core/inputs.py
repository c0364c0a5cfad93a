"""Business inputs at the boundary: what a valid entry is, per kind, and the errors that say why not.

Every way in (the API, a CSV file, the command line, Python callers) goes through ``check_input``,
so an entry is refused for the same reason with the same words wherever it came from. A refusal
lists every problem found, each with its field (and its line, for a file) and the reason.

Bounds are sanity bounds, not business rules: they catch a unit slip (yuan typed into a field of
10,000 CNY), a stray exponent or a year typed as 0026, never a legitimate figure of a real site.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from core.business import InputKind
from core.errors import FactoryError

FIRST_YEAR = 1900
LAST_YEAR = 2200
NOTE_MAX_CHARS = 1000
ENTERED_BY_MAX_CHARS = 128
MAX_PROBLEMS = 100  # a refusal lists at most this many problems (and counts the rest)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# C0 controls except tab, LF and CR; DEL; C1 controls; lone surrogates (JSON "\ud800" decodes to one,
# and no UTF-8 text, SQLite's included, can hold it).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class KindRule:
    """What a value of one kind may be: [minimum, maximum], whole or not, zero allowed or not."""

    maximum: float
    minimum: float = 0.0
    whole: bool = False
    positive: bool = False  # strictly above ``minimum``
    meaning: str = ""


KIND_RULES: dict[InputKind, KindRule] = {
    # 10^9 × 10,000 CNY = 10 trillion CNY, more than any single company's turnover.
    InputKind.VALUE_ADDED: KindRule(maximum=1e9, meaning="10k CNY over the period"),
    InputKind.OUTPUT_VALUE: KindRule(maximum=1e9, meaning="10k CNY over the period"),
    InputKind.OPERATING_COST: KindRule(maximum=1e9, meaning="10k CNY over the period"),
    InputKind.HEADCOUNT: KindRule(maximum=1_000_000, whole=True, meaning="average persons employed"),
    # A site occupies some land; 1,000 km² is larger than any industrial park.
    InputKind.LAND_AREA: KindRule(maximum=1000, positive=True, meaning="km² (1 km² = 1,000,000 m²)"),
    InputKind.DEV_PROJECT: KindRule(maximum=3650, minimum=1, whole=True, meaning="days from design start to launch"),
    InputKind.WATER_INTAKE: KindRule(maximum=1e10, meaning="m³ over the period"),
    InputKind.PURCHASED_HEAT: KindRule(maximum=1e12, meaning="MJ over the period"),
    InputKind.DIGITAL_RD_TOOL_RATE: KindRule(maximum=1.0, meaning="share of R&D done with digital tools, 0..1"),
    InputKind.RECOGNISED_DIGITAL_WORKSHOPS: KindRule(maximum=10_000, whole=True, meaning="count"),
    # 10^10 h is a million people working for over five years.
    InputKind.LABOUR_HOURS: KindRule(maximum=1e10, meaning="hours worked by all employees over the period"),
}


_KIND_VALUES = frozenset(k.value for k in InputKind)


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One reason an entry (or a row of a file) was refused."""

    field: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field}: {self.reason}"


class InputError(FactoryError):
    """Base of the business-input errors."""


class InputRejected(InputError):
    """An entry, a correction or a file was refused; nothing was stored.

    ``problems`` holds at most ``MAX_PROBLEMS`` problems in the order found; ``total`` counts them all.
    """

    def __init__(self, problems: Sequence[FieldProblem], total: int | None = None, *, what: str = "input"):
        self.problems = list(problems[:MAX_PROBLEMS])
        self.total = max(len(problems), total or 0)
        self.what = what
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = f" (and {self.total - 5} more)" if self.total > 5 else ""
        super().__init__(f"{what} refused: {shown}{more}")


class InputFileTooLarge(InputRejected):
    """A CSV file above the size limit; refused before it is read."""


class InputOutOfScope(InputRejected):
    """An entry, a row or a request names a site outside the caller's (a site key's, ``--site``); nothing was stored."""


class InputNotFound(InputError):
    """No entry has this id."""


class InputConflict(InputError):
    """The change does not fit the entry's current state (withdrawn, or a newer version exists)."""


def shown(value: object, limit: int = 40) -> str:
    """A value quoted for an error message, cut short: a message never echoes a megabyte back."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-1]}"


def parse_date(text: str, field: str, line: int | None = None) -> date | FieldProblem:
    """``YYYY-MM-DD`` and nothing else (no times, no week dates, no compact forms)."""
    text = text.strip()
    if not _DATE.match(text):
        return FieldProblem(field, f"{shown(text)} is not a date written YYYY-MM-DD", line)
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        return FieldProblem(field, f"{shown(text)} is not a calendar date ({exc})", line)


def parse_number(text: str, field: str, line: int | None = None) -> float | FieldProblem:
    """A plain decimal number (``1234.5``, ``1.2e3``): no NaN, infinities, hex, underscores or separators."""
    text = text.strip()
    if not _NUMBER.match(text):
        return FieldProblem(field, f"{shown(text)} is not a number (write e.g. 1234.5)", line)
    number = float(text)
    if not math.isfinite(number):
        return FieldProblem(field, f"{shown(text)} is too large to be a finite number", line)
    return number


def dev_project_days(period_start: date, period_end: date) -> int:
    """A development project's value: the days from design start to launch."""
    return (period_end - period_start).days


def check_value(kind: InputKind, value: object, days: int | None = None) -> str | None:
    """The reason ``value`` cannot be a ``kind``'s value, or None. ``days``: a dev project's period length."""
    rule = KIND_RULES[kind]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{shown(value)} is not a number"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a finite number"
    # Compared before any conversion, so a huge integer is refused rather than overflowing float().
    if value < rule.minimum or (rule.positive and value == rule.minimum):
        bound = "above" if rule.positive else "at least"
        return f"{shown(value)} is below the range of {kind.value}: must be {bound} {rule.minimum:g} ({rule.meaning})"
    if value > rule.maximum:
        return f"{shown(value)} is above the sane bound {rule.maximum:g} for {kind.value} ({rule.meaning})"
    if rule.whole and value != int(value):
        return f"{shown(value)} must be a whole number for {kind.value} ({rule.meaning})"
    if kind is InputKind.DEV_PROJECT and days is not None and value != days:
        return (
            f"a dev_project's value is the days from period_start (design start) to period_end (launch):"
            f" {days}, not {shown(value)}"
        )
    return None


def check_note(note: object, field: str = "note") -> str | None:
    if not isinstance(note, str):
        return f"{shown(note)} is not text"
    if len(note) > NOTE_MAX_CHARS:
        return f"{len(note)} characters; at most {NOTE_MAX_CHARS}"
    if _CONTROL.search(note):
        return "contains control characters or unpaired surrogates (only tab and line breaks are allowed)"
    return None


def is_clean_text(text: str) -> bool:
    """No control characters and no unpaired surrogates: safe to store, log and show."""
    return _ANY_CONTROL.search(text) is None


def check_entered_by(entered_by: object) -> str | None:
    if not isinstance(entered_by, str) or not entered_by.strip():
        return "who entered it must be named"
    if len(entered_by) > ENTERED_BY_MAX_CHARS:
        return f"{len(entered_by)} characters; at most {ENTERED_BY_MAX_CHARS}"
    if _ANY_CONTROL.search(entered_by):
        return "contains control characters or unpaired surrogates"
    return None


def _check_day(value: object, field: str, line: int | None) -> FieldProblem | None:
    if isinstance(value, datetime) or not isinstance(value, date):
        return FieldProblem(field, f"{shown(value)} is not a date (a day, without a time)", line)
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        return FieldProblem(field, f"{value.isoformat()} is outside the years {FIRST_YEAR}-{LAST_YEAR}", line)
    return None


@dataclass(frozen=True, slots=True)
class InputDraft:
    """The content of a new entry or version, checked: what the store writes. Build it with ``draft``."""

    site: str
    kind: InputKind
    period_start: date
    period_end: date
    value: float
    note: str = ""
    line: int | None = None  # where it came from, for a file


def input_problems(
    site: object,
    kind: object,
    period_start: object,
    period_end: object,
    value: object,
    note: object,
    sites: Collection[str],
    line: int | None = None,
    unparsed: Collection[str] = (),
) -> list[FieldProblem]:
    """Every reason these fields cannot make an entry (empty: they can).

    ``value`` None is allowed for a dev_project only: its value is then the period's length in days.
    ``unparsed``: fields already refused by a parser (a file's text); they are not checked again.
    """
    problems: list[FieldProblem] = []

    def refuse(field: str, reason: str | None) -> None:
        if reason is not None:
            problems.append(FieldProblem(field, reason, line))

    if not isinstance(site, str) or site not in sites:
        known = ", ".join(sorted(sites)[:10]) + (", ..." if len(sites) > 10 else "")
        refuse("site", f"unknown site {shown(site)}: not a site of the asset model (known: {known or 'none'})")
    input_kind = InputKind(kind) if isinstance(kind, str) and kind in _KIND_VALUES else None
    if input_kind is None:
        refuse("kind", f"unknown kind {shown(kind)} (known: {', '.join(k.value for k in InputKind)})")
    start_problem = _check_day(period_start, "period_start", line) if "period_start" not in unparsed else None
    end_problem = _check_day(period_end, "period_end", line) if "period_end" not in unparsed else None
    problems.extend(p for p in (start_problem, end_problem) if p is not None)
    days: int | None = None
    if start_problem is None and end_problem is None and not {"period_start", "period_end"} & set(unparsed):
        assert isinstance(period_start, date) and isinstance(period_end, date)
        if period_end <= period_start:
            refuse(
                "period_end",
                f"{period_end.isoformat()} must be after period_start {period_start.isoformat()}"
                " (periods are [start, end): the end is the first day after the period)",
            )
        else:
            days = dev_project_days(period_start, period_end)
    if input_kind is not None and "value" not in unparsed:
        if value is None:
            if input_kind is not InputKind.DEV_PROJECT:
                refuse("value", f"missing: a {input_kind.value} needs a value ({KIND_RULES[input_kind].meaning})")
        else:
            refuse("value", check_value(input_kind, value, days))
    elif input_kind is None and value is not None:  # the kind is unknown, but a non-number is still worth saying
        if isinstance(value, bool) or not isinstance(value, int | float):
            refuse("value", f"{shown(value)} is not a number")
        elif isinstance(value, float) and not math.isfinite(value):
            refuse("value", f"{value!r} is not a finite number")
    refuse("note", check_note(note))
    return problems


def draft(
    site: object,
    kind: object,
    period_start: object,
    period_end: object,
    value: object,
    note: object,
    sites: Collection[str],
    line: int | None = None,
) -> InputDraft:
    """The checked draft of these fields; ``InputRejected`` listing every problem if they do not make one."""
    problems = input_problems(site, kind, period_start, period_end, value, note, sites, line)
    if problems:
        raise InputRejected(problems)
    assert isinstance(site, str) and isinstance(period_start, date) and isinstance(period_end, date)
    input_kind = InputKind(str(kind))
    if value is None:  # a dev_project: its length
        value = dev_project_days(period_start, period_end)
    assert isinstance(value, int | float) and isinstance(note, str)
    return InputDraft(site, input_kind, period_start, period_end, float(value), note, line)
