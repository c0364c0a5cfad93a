"""The factory as an ISA-95 tree under a park (park → site → workshop → line → equipment), from YAML.

An asset file is one of:

* ``site:`` — one site (today's format); it is a park of one site, whose id is ``park`` unless a
  ``park: {id, name}`` section beside it names it;
* ``park: {id, name, sites: [...]}`` — several sites in one file;
* ``park: {id, name, site_files: [...]}`` — one file per site (each in the ``site:`` format), paths
  relative to the park file; ``sites`` and ``site_files`` may be combined (inline sites first).

Ids are unique across the whole park, the park's own id included. Each site has its own time zone
and may have a shift calendar; a workshop's own calendar replaces the site's for its equipment
(``core.calendar``; no calendar: working around the clock).

Every file is validated at start: a broken one fails with the file, the line, the field path and
the reason (see ``core.yamlconfig``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from core.calendar import ShiftCalendar, check_zone
from core.errors import ConfigError
from core.yamlconfig import format_loc, line_of, read_yaml, validation_to_config_error

DEFAULT_PARK_ID = "park"  # the park of a single-site file that does not name its park

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


class ParkSection(_Strict):
    """``park:`` of an asset file: the park's id and name, and its sites inline, in files of their own, or both.

    Beside ``site:`` (a single-site file) it only names the park: no ``sites`` or ``site_files`` then.
    """

    id: Identifier = DEFAULT_PARK_ID
    name: str = ""
    timezone: Annotated[str, AfterValidator(check_zone)] | None = Field(
        default=None, description="the zone park-wide periods are dated in; default: the first site's"
    )
    sites: list[Site] = Field(default_factory=list)
    site_files: list[Path] = Field(default_factory=list, description="site files, relative to the park file")


class AssetFile(_Strict):
    """An asset file: one site (``site:``, a park of one site) or a park (``park:`` with sites or site files)."""

    version: int = Field(default=1, ge=1, le=1)
    site: Site | None = None
    park: ParkSection | None = None


class SiteFile(_Strict):
    """A file named by a park's ``site_files``: exactly today's single-site format."""

    version: int = Field(default=1, ge=1, le=1)
    site: Site


class Park(_Strict):
    """The whole model: a park of one or more sites, each with its own zone and calendar."""

    id: Identifier = DEFAULT_PARK_ID
    name: str = ""
    timezone: Annotated[str, AfterValidator(check_zone)] | None = Field(
        default=None, description="the zone park-wide periods are dated in; default: the first site's"
    )
    sites: list[Site] = Field(min_length=1)

    @property
    def zone(self) -> str:
        return self.timezone or self.sites[0].timezone


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


ScopeKind = Literal["park", "site", "workshop", "line", "equipment"]


@dataclass(frozen=True, slots=True)
class _ScopeInfo:
    kind: ScopeKind
    name: str
    site: str | None  # None: the park
    equipment: list[str]


class AssetModel:
    """Read-only view of a validated park (one or more sites), with lookups by id and by scope.

    Scopes are the park, its sites, workshops, lines and equipment; ids are unique across the park.
    A site, workshop, line or piece of equipment belongs to exactly one site (``site_of``), whose
    zone and calendar apply to it (``calendar_of``).
    """

    def __init__(self, park: Park, source: str = "<memory>"):
        self.park = park
        self.source = source
        self._equipment: dict[str, Equipment] = {}
        self._placement: dict[str, Placement] = {}
        self._sites: dict[str, Site] = {site.id: site for site in park.sites}
        self._zones: dict[str, ZoneInfo] = {site.id: ZoneInfo(site.timezone) for site in park.sites}
        self._scopes: dict[str, _ScopeInfo] = {}
        self._calendars: dict[str, ShiftCalendar] = {}
        self._add(park.id, _ScopeInfo("park", park.name, None, []), ShiftCalendar())
        for site in park.sites:
            site_calendar = site.calendar if site.calendar is not None else ShiftCalendar()
            self._add(site.id, _ScopeInfo("site", site.name, site.id, []), site_calendar)
            for workshop in site.workshops:
                calendar = workshop.calendar if workshop.calendar is not None else site_calendar
                self._add(workshop.id, _ScopeInfo("workshop", workshop.name, site.id, []), calendar)
                for line in workshop.lines:
                    self._add(line.id, _ScopeInfo("line", line.name, site.id, []), calendar)
                    for eq in line.equipment:
                        self._add(eq.id, _ScopeInfo("equipment", eq.name, site.id, [eq.id]), calendar)
                        self._equipment[eq.id] = eq
                        self._placement[eq.id] = Placement(
                            site.id, workshop.id, line.id, eq.id, eq.gateway or line.gateway
                        )
                        for scope in (park.id, site.id, workshop.id, line.id):
                            self._scopes[scope].equipment.append(eq.id)

    def _add(self, scope_id: str, info: _ScopeInfo, calendar: ShiftCalendar) -> None:
        # load_asset_model reports a duplicate with its file and line; this guards models built in code.
        if scope_id in self._scopes:
            raise ValueError(f"duplicate id {scope_id!r} in {self.source}: ids are unique across the park")
        self._scopes[scope_id] = info
        self._calendars[scope_id] = calendar

    def __contains__(self, equipment_id: object) -> bool:
        return equipment_id in self._equipment

    def __iter__(self) -> Iterator[Equipment]:
        return iter(self._equipment.values())

    # --- the park and its sites ----------------------------------------------------------------

    @property
    def sites(self) -> list[Site]:
        return list(self.park.sites)

    def get_site(self, site_id: str) -> Site:
        try:
            return self._sites[site_id]
        except KeyError:
            known = ", ".join(self._sites)
            raise KeyError(f"unknown site {site_id!r} (the sites of {self.source}: {known})") from None

    def one_site(self, site_id: str | None = None) -> Site:
        """The site a single-site component works on: the one named, else the park's only site.

        Raises KeyError for an unknown site and ValueError when none is named and the park has several.
        """
        if site_id is not None:
            return self.get_site(site_id)
        if len(self.park.sites) == 1:
            return self.park.sites[0]
        known = ", ".join(self._sites)
        raise ValueError(f"the park {self.park.id!r} of {self.source} has {len(self._sites)} sites ({known}): name one")

    def site_of(self, scope_id: str) -> str | None:
        """The site id of a site, workshop, line or equipment scope; None for the park."""
        return self._info(scope_id).site

    def scope_kind(self, scope_id: str) -> ScopeKind:
        return self._info(scope_id).kind

    def scope_name(self, scope_id: str) -> str:
        """The scope's name in the asset file, else its id."""
        return self._info(scope_id).name or scope_id

    def timezone_of(self, scope_id: str) -> ZoneInfo:
        """The zone a scope's local times are in: its site's; the park's ``timezone`` (default: its first site's)."""
        site = self._info(scope_id).site
        return self._zones[site] if site is not None else ZoneInfo(self.park.zone)

    def digest(self) -> str:
        """SHA-256 (hex) of the model as canonical JSON (sorted keys, no spaces): what a report was made with.

        Only the content counts, not where it was read from: moving a site into a file of its own
        keeps the digest.
        """
        text = json.dumps(self.park.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    # --- equipment and scopes ------------------------------------------------------------------

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

    def _info(self, scope_id: str) -> _ScopeInfo:
        try:
            return self._scopes[scope_id]
        except KeyError:
            raise KeyError(
                f"unknown scope {scope_id!r}: not the park, a site, workshop, line or equipment id"
            ) from None

    def scope(self, scope_id: str) -> list[Equipment]:
        """All equipment under the park, a site, workshop, line or equipment id, in file order."""
        return [self._equipment[e] for e in self._info(scope_id).equipment]

    def scope_ids(self) -> list[str]:
        return list(self._scopes)

    def covered_by(self, meter_id: str) -> list[Equipment]:
        return [eq for eq in self._equipment.values() if meter_id in eq.meter_ids]

    def calendar_of(self, scope_id: str) -> tuple[ZoneInfo, ShiftCalendar]:
        """The site's zone and the calendar that applies to a piece of equipment (or a line, workshop, site).

        Equipment, lines and workshops follow their workshop's calendar, else the site's; a site
        without one works around the clock (an empty ``ShiftCalendar``). The park has no calendar of
        its own (each site keeps its own): it gets the park's zone and around the clock.
        """
        info = self._info(scope_id)
        zone = self._zones[info.site] if info.site is not None else ZoneInfo(self.park.zone)
        return zone, self._calendars[scope_id]


Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class _SiteSource:
    """Where a site was read: its file, that file's line index and the site's location in it."""

    path: str
    index: dict[Loc, int]
    loc: Loc  # ("site",) in a site file, ("park", "sites", n) in a park file

    def error(self, loc: Loc, reason: str) -> ConfigError:
        return ConfigError(self.path, reason, line=line_of(self.index, loc), field=format_loc(loc))

    def where(self, loc: Loc) -> str:
        line = line_of(self.index, loc)
        return f"{self.path}:{line}: {format_loc(loc)}" if line is not None else f"{self.path}: {format_loc(loc)}"


def _walk_equipment(site: Site, at: Loc) -> Iterator[tuple[Loc, Equipment]]:
    for w, workshop in enumerate(site.workshops):
        for li, line in enumerate(workshop.lines):
            for e, eq in enumerate(line.equipment):
                yield (*at, "workshops", w, "lines", li, "equipment", e), eq


def _ids(site: Site, at: Loc) -> Iterator[tuple[Loc, str]]:
    yield at, site.id
    for w, ws in enumerate(site.workshops):
        yield (*at, "workshops", w), ws.id
        for li, ln in enumerate(ws.lines):
            yield (*at, "workshops", w, "lines", li), ln.id
    yield from ((loc, eq.id) for loc, eq in _walk_equipment(site, at))


def _check_unique_ids(park_id: str, park_at: tuple[_SiteSource, Loc], sites: list[tuple[Site, _SiteSource]]) -> None:
    """Every id once across the park (the park's own id too); the error points at the second use."""
    seen: dict[str, tuple[_SiteSource, Loc]] = {park_id: park_at}
    for site, source in sites:
        for loc, item_id in _ids(site, source.loc):
            if item_id in seen:
                first_source, first_loc = seen[item_id]
                same_file = first_source.path == source.path
                first = format_loc(first_loc) if same_file else first_source.where(first_loc)
                if not first_loc:  # the implicit park of a single-site file
                    first = f"the park's id (default {DEFAULT_PARK_ID!r}; name the park with park: {{id: ...}})"
                raise source.error((*loc, "id"), f"duplicate id {item_id!r} (first used at {first})")
            seen[item_id] = (source, loc)


def _check_references(site: Site, source: _SiteSource) -> None:
    fail = source.error
    meters = {eq.id: eq for _, eq in _walk_equipment(site, source.loc) if eq.type == EquipmentType.METER}
    for loc, eq in _walk_equipment(site, source.loc):
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
            raise fail((*loc, "meter"), f"no meter with id {eq.meter!r} in site {site.id!r}")
        for n, meter_id in enumerate(eq.meters):
            if meter_id not in meters:
                raise fail((*loc, "meters", n), f"no meter with id {meter_id!r} in site {site.id!r}")
        if eq.type in (EquipmentType.CNC, EquipmentType.ROBOT) and eq.ideal_cycle_time_s is None:
            raise fail((*loc, "ideal_cycle_time_s"), f"required for {eq.type.value} equipment")
        if eq.key_process and not eq.process_step:
            raise fail((*loc, "process_step"), "a key process must name its process step")


_M = TypeVar("_M", bound=BaseModel)


def _validate(model: type[_M], path: Path, data: object, index: dict[Loc, int]) -> _M:
    from pydantic import ValidationError

    if data is None:
        raise ConfigError(str(path), "file is empty")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(path, exc, index) from exc


def _site_file(park_path: Path, park_index: dict[Loc, int], n: int, name: Path) -> tuple[Site, _SiteSource]:
    path = name if name.is_absolute() else park_path.parent / name
    loc: Loc = ("park", "site_files", n)
    if not path.is_file():
        raise ConfigError(
            str(park_path), f"site file {path} does not exist", line=line_of(park_index, loc), field=format_loc(loc)
        )
    data, index = read_yaml(path)
    if isinstance(data, dict) and "park" in data:
        reason = "a site file holds one site (site: ...), not a park"
        raise ConfigError(str(path), reason, line=line_of(index, ("park",)), field="park")
    parsed = _validate(SiteFile, path, data, index)
    return parsed.site, _SiteSource(str(path), index, ("site",))


def load_asset_model(path: Path | str) -> AssetModel:
    """Load and validate an asset file (a site, or a park and its site files).

    Every problem raises ConfigError naming the file, line and field: a duplicate id names the file
    and place of its second use and where it was first used.
    """
    path = Path(path)
    data, index = read_yaml(path)
    parsed = _validate(AssetFile, path, data, index)
    here = _SiteSource(str(path), index, ())
    section = parsed.park
    sites: list[tuple[Site, _SiteSource]] = []
    if parsed.site is not None:
        if section is not None and (section.sites or section.site_files):
            where: Loc = ("park", "sites" if section.sites else "site_files")
            raise here.error(where, "beside site: the park section only names the park; list every site under park:")
        sites.append((parsed.site, _SiteSource(str(path), index, ("site",))))
    elif section is not None:
        sites += [(site, _SiteSource(str(path), index, ("park", "sites", n))) for n, site in enumerate(section.sites)]
        sites += [_site_file(path, index, n, name) for n, name in enumerate(section.site_files)]
        if not sites:
            raise here.error(("park",), "a park needs at least one site (sites: [...] or site_files: [...])")
    else:
        raise ConfigError(str(path), "an asset file needs site: (one site) or park: (a park of sites)")
    header = section or ParkSection()
    _check_unique_ids(header.id, (here, ("park", "id") if section is not None else ()), sites)
    for site, source in sites:
        _check_references(site, source)
    park = Park(id=header.id, name=header.name, timezone=header.timezone, sites=[site for site, _ in sites])
    return AssetModel(park, source=str(path))
