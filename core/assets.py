"""The factory as an ISA-95 tree (site → workshop → line → equipment), loaded from one YAML file.

The site has a time zone and may have a shift calendar; a workshop's own calendar replaces the
site's for its equipment (``core.calendar``; no calendar: working around the clock).

The file is validated at start: a broken file fails with the file, the line, the field path and the
reason (see ``core.yamlconfig``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from core.calendar import ShiftCalendar, check_zone
from core.errors import ConfigError
from core.yamlconfig import format_loc, line_of, read_yaml, validation_to_config_error

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class EquipmentType(StrEnum):
    CNC = "cnc"
    ROBOT = "robot"
    METER = "meter"
    INSPECTION = "inspection"
    LOGISTICS = "logistics"
    MANUAL = "manual"


class EnergyCarrier(StrEnum):
    """What a meter measures; each carrier has one unit (``CARRIER_UNIT``) and one register signal."""

    ELECTRICITY = "electricity"
    NATURAL_GAS = "natural_gas"
    WATER = "water"
    HEAT = "heat"
    STEAM = "steam"
    COMPRESSED_AIR = "compressed_air"  # bought in only: air made on site is already in its electricity
    DIESEL = "diesel"
    GASOLINE = "gasoline"


CARRIER_UNIT: dict[EnergyCarrier, str] = {
    EnergyCarrier.ELECTRICITY: "kWh",
    EnergyCarrier.NATURAL_GAS: "m3",
    EnergyCarrier.WATER: "m3",
    EnergyCarrier.HEAT: "MJ",
    EnergyCarrier.STEAM: "kg",
    EnergyCarrier.COMPRESSED_AIR: "m3",
    EnergyCarrier.DIESEL: "kg",
    EnergyCarrier.GASOLINE: "kg",
}

# The cumulative register signal a meter of each carrier reports (core.signals.ENERGY_COUNTERS).
REGISTER_SIGNAL: dict[EnergyCarrier, str] = {
    EnergyCarrier.ELECTRICITY: "energy_kwh",
    EnergyCarrier.NATURAL_GAS: "gas_m3",
    EnergyCarrier.WATER: "water_m3",
    EnergyCarrier.HEAT: "heat_mj",
    EnergyCarrier.STEAM: "steam_kg",
    EnergyCarrier.COMPRESSED_AIR: "compressed_air_m3",
    EnergyCarrier.DIESEL: "diesel_kg",
    EnergyCarrier.GASOLINE: "gasoline_kg",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Equipment(_Strict):
    id: Identifier
    name: str = ""
    type: EquipmentType
    numerically_controlled: bool = False
    process_step: str | None = None
    key_process: bool = False
    ideal_cycle_time_s: float | None = Field(default=None, gt=0, le=86_400)
    meter: Identifier | None = Field(default=None, description="id of the meter that covers this equipment")
    meters: list[Identifier] = Field(
        default_factory=list, description="further meters that cover this equipment (one per carrier, or sub-meters)"
    )
    carrier: EnergyCarrier | None = Field(default=None, description="for meters: what they measure")
    register_max: float | None = Field(
        default=None, gt=0, description="for meters: the register wraps to 0 after this value (rollover, not reset)"
    )
    report_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="the edge reports every signal of this equipment at least this often (refresh or change)",
    )
    gateway: Identifier | None = Field(default=None, description="the edge allowed to report it; default: the line's")
    digital: bool | None = Field(
        default=None, description="has a digital interface that can be networked; default: every type but manual"
    )

    @property
    def produces_parts(self) -> bool:
        return self.type not in (EquipmentType.METER, EquipmentType.LOGISTICS)

    @property
    def meter_ids(self) -> list[str]:
        """Every meter that covers this equipment, ``meter`` first."""
        return list(dict.fromkeys([*([self.meter] if self.meter else []), *self.meters]))

    @property
    def is_digital(self) -> bool:
        return self.digital if self.digital is not None else self.type != EquipmentType.MANUAL


class Line(_Strict):
    id: Identifier
    name: str = ""
    gateway: Identifier | None = Field(default=None, description="the edge allowed to report this line's equipment")
    equipment: list[Equipment] = Field(min_length=1)


class Workshop(_Strict):
    id: Identifier
    name: str = ""
    calendar: ShiftCalendar | None = Field(default=None, description="replaces the site's for this workshop")
    lines: list[Line] = Field(min_length=1)


class Site(_Strict):
    id: Identifier
    name: str = ""
    timezone: Annotated[str, AfterValidator(check_zone)] = Field(
        default="Asia/Shanghai", description="IANA name; every clock time and report bucket of the site is local to it"
    )
    calendar: ShiftCalendar | None = Field(default=None, description="none: working around the clock")
    workshops: list[Workshop] = Field(min_length=1)


class AssetFile(_Strict):
    version: int = Field(default=1, ge=1, le=1)
    site: Site


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a piece of equipment sits in the tree; these become the store's tags."""

    site: str
    workshop: str
    line: str
    equipment: str
    gateway: str | None = None  # the edge allowed to report it (equipment's, else line's); not a tag

    def tags(self) -> dict[str, str]:
        return {"site": self.site, "workshop": self.workshop, "line": self.line, "equipment": self.equipment}


class AssetModel:
    """Read-only view of a validated asset file, with lookups by id and by scope."""

    def __init__(self, site: Site, source: str = "<memory>"):
        self.site = site
        self.source = source
        self._equipment: dict[str, Equipment] = {}
        self._placement: dict[str, Placement] = {}
        self.timezone = ZoneInfo(site.timezone)
        self._scopes: dict[str, list[str]] = {site.id: []}
        site_calendar = site.calendar if site.calendar is not None else ShiftCalendar()
        self._calendars: dict[str, ShiftCalendar] = {site.id: site_calendar}
        for workshop in site.workshops:
            self._scopes[workshop.id] = []
            calendar = workshop.calendar if workshop.calendar is not None else site_calendar
            self._calendars[workshop.id] = calendar
            for line in workshop.lines:
                self._scopes[line.id] = []
                self._calendars[line.id] = calendar
                for eq in line.equipment:
                    self._equipment[eq.id] = eq
                    self._placement[eq.id] = Placement(site.id, workshop.id, line.id, eq.id, eq.gateway or line.gateway)
                    for scope in (site.id, workshop.id, line.id):
                        self._scopes[scope].append(eq.id)
                    self._scopes[eq.id] = [eq.id]
                    self._calendars[eq.id] = calendar

    def __contains__(self, equipment_id: object) -> bool:
        return equipment_id in self._equipment

    def __iter__(self) -> Iterator[Equipment]:
        return iter(self._equipment.values())

    def equipment(self, equipment_id: str) -> Equipment:
        try:
            return self._equipment[equipment_id]
        except KeyError:
            raise KeyError(f"unknown equipment {equipment_id!r} (not in {self.source})") from None

    def placement(self, equipment_id: str) -> Placement:
        self.equipment(equipment_id)
        return self._placement[equipment_id]

    def has_scope(self, scope_id: str) -> bool:
        return scope_id in self._scopes

    # TEMP until the park branch lands (it replaces both): a park of this one site.
    @property
    def sites(self) -> list[Site]:
        return [self.site]

    def site_of(self, scope_id: str) -> str | None:
        """TEMP: the site id of a scope; None for an unknown scope (the park branch: None for the park)."""
        return self.site.id if scope_id in self._scopes else None

    def scope(self, scope_id: str) -> list[Equipment]:
        """All equipment under a site, workshop, line or equipment id, in file order."""
        try:
            return [self._equipment[e] for e in self._scopes[scope_id]]
        except KeyError:
            raise KeyError(f"unknown scope {scope_id!r}: not a site, workshop, line or equipment id") from None

    def scope_ids(self) -> list[str]:
        return list(self._scopes)

    def covered_by(self, meter_id: str) -> list[Equipment]:
        return [eq for eq in self._equipment.values() if meter_id in eq.meter_ids]

    def calendar_of(self, scope_id: str) -> tuple[ZoneInfo, ShiftCalendar]:
        """The site's zone and the calendar that applies to a piece of equipment (or a line, workshop, site).

        Equipment, lines and workshops follow their workshop's calendar, else the site's; a site
        without one works around the clock (an empty ``ShiftCalendar``).
        """
        try:
            return self.timezone, self._calendars[scope_id]
        except KeyError:
            raise KeyError(f"unknown scope {scope_id!r}: not a site, workshop, line or equipment id") from None


def _walk_equipment(site: Site) -> Iterator[tuple[tuple[str | int, ...], Equipment]]:
    for w, workshop in enumerate(site.workshops):
        for li, line in enumerate(workshop.lines):
            for e, eq in enumerate(line.equipment):
                yield ("site", "workshops", w, "lines", li, "equipment", e), eq


def _check_references(path: str, site: Site, index: dict[tuple[str | int, ...], int]) -> None:
    def fail(loc: tuple[str | int, ...], reason: str) -> ConfigError:
        return ConfigError(path, reason, line=line_of(index, loc), field=format_loc(loc))

    seen: dict[str, tuple[str | int, ...]] = {}
    for loc, item_id in [
        (("site",), site.id),
        *((("site", "workshops", w), ws.id) for w, ws in enumerate(site.workshops)),
        *(
            (("site", "workshops", w, "lines", li), ln.id)
            for w, ws in enumerate(site.workshops)
            for li, ln in enumerate(ws.lines)
        ),
        *((loc, eq.id) for loc, eq in _walk_equipment(site)),
    ]:
        if item_id in seen:
            raise fail((*loc, "id"), f"duplicate id {item_id!r} (first used at {format_loc(seen[item_id])})")
        seen[item_id] = loc

    meters = {eq.id: eq for _, eq in _walk_equipment(site) if eq.type == EquipmentType.METER}
    for loc, eq in _walk_equipment(site):
        if eq.type == EquipmentType.METER:
            if eq.carrier is None:
                carriers = ", ".join(c.value for c in EnergyCarrier)
                raise fail((*loc, "carrier"), f"a meter needs a carrier ({carriers})")
            if eq.meter_ids:
                raise fail((*loc, "meter" if eq.meter else "meters"), "a meter cannot itself be covered by a meter")
        else:
            if eq.carrier is not None:
                raise fail((*loc, "carrier"), "only meters have a carrier")
            if eq.register_max is not None:
                raise fail((*loc, "register_max"), "only meters have a register")
        if eq.meter is not None and eq.meter not in meters:
            raise fail((*loc, "meter"), f"no meter with id {eq.meter!r} in this file")
        for n, meter_id in enumerate(eq.meters):
            if meter_id not in meters:
                raise fail((*loc, "meters", n), f"no meter with id {meter_id!r} in this file")
        if eq.type in (EquipmentType.CNC, EquipmentType.ROBOT) and eq.ideal_cycle_time_s is None:
            raise fail((*loc, "ideal_cycle_time_s"), f"required for {eq.type.value} equipment")
        if eq.key_process and not eq.process_step:
            raise fail((*loc, "process_step"), "a key process must name its process step")


def load_asset_model(path: Path | str) -> AssetModel:
    """Load and validate an asset file; every problem raises ConfigError naming file, line and field."""
    from pydantic import ValidationError

    data, index = read_yaml(path)
    if data is None:
        raise ConfigError(str(path), "file is empty")
    try:
        parsed = AssetFile.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(path, exc, index) from exc
    _check_references(str(path), parsed.site, index)
    return AssetModel(parsed.site, source=str(path))
