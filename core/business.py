"""Business inputs: what machines cannot report (value added, cost, headcount, projects ...).

Each entry covers one site and one period (local dates, [start, end)) and is versioned: a
correction is a new version of the same ``entry_id`` with who made it and when; history is never
overwritten. Readers see the latest version of each entry unless they ask for an ``as_of`` instant
(so a report can be regenerated over the inputs it was made from).

Units are fixed per kind (``INPUT_UNIT``) so a number never travels without its meaning.
Product development projects are entries of kind ``dev_project`` whose value is the number of days
from design start (``period_start``) to launch (``period_end``); the period is the project's own.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict


class InputKind(StrEnum):
    VALUE_ADDED = "value_added"  # 万元 (10,000 CNY) over the period
    OUTPUT_VALUE = "output_value"  # 万元 over the period
    OPERATING_COST = "operating_cost"  # 万元 over the period
    HEADCOUNT = "headcount"  # average employees over the period
    LAND_AREA = "land_area"  # km² (as of the period)
    DEV_PROJECT = "dev_project"  # days from design start (period_start) to launch (period_end)
    WATER_INTAKE = "water_intake"  # m³ of fresh water taken in over the period
    PURCHASED_HEAT = "purchased_heat"  # MJ bought in over the period
    DIGITAL_RD_TOOL_RATE = "digital_rd_tool_rate"  # share (0..1) of R&D done with digital tools
    RECOGNISED_DIGITAL_WORKSHOPS = "recognised_digital_workshops"  # count recognised by the authority
    LABOUR_HOURS = "labour_hours"  # hours worked by all employees over the period (efficiency per labour hour)


INPUT_UNIT: dict[InputKind, str] = {
    InputKind.VALUE_ADDED: "10k CNY",
    InputKind.OUTPUT_VALUE: "10k CNY",
    InputKind.OPERATING_COST: "10k CNY",
    InputKind.HEADCOUNT: "persons",
    InputKind.LAND_AREA: "km2",
    InputKind.DEV_PROJECT: "days",
    InputKind.WATER_INTAKE: "m3",
    InputKind.PURCHASED_HEAT: "MJ",
    InputKind.DIGITAL_RD_TOOL_RATE: "ratio",
    InputKind.RECOGNISED_DIGITAL_WORKSHOPS: "count",
    InputKind.LABOUR_HOURS: "h",
}


class InputEntry(BaseModel):
    """One version of one business input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entry_id: str
    version: int
    site: str
    kind: InputKind
    period_start: date
    period_end: date
    value: float
    note: str = ""
    entered_by: str  # the API key's id (or "cli:<user>") that made this version
    entered_at: datetime
    deleted: bool = False  # a withdrawal is a version too


class BusinessInputs(Protocol):
    """Read side of the business-input store, as the certification engine uses it."""

    def entries(
        self, site: str, kind: InputKind, start: date, end: date, *, as_of: datetime | None = None
    ) -> list[InputEntry]:
        """Latest version (at ``as_of``, default now) of every live entry whose period overlaps [start, end)."""
        ...
