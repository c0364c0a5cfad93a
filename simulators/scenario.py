"""Scenario files: how the simulated factory behaves, as one validated YAML file beside its asset model.

A scenario names its asset model (``assets``, relative to the scenario file) and says how every
machine and meter in it behaves: cycle-time jitter, breakdowns (MTBF/MTTR),
minor stops, starvation, changeovers between programs, scrap and rework, power draw per state,
device faults (power cycles that reset the counters, a PLC clock that jumps back to 2000, OPC UA
server restarts), the meters' MQTT topics and payload shapes, and the history generator's baseline
and assessment periods. The same file and seed always give the same factory.

A broken file fails at start with the file, the line, the field path and the reason, like every
other configuration file of the platform (``core.yamlconfig``); cross-checks against the asset model
(an unknown equipment id, a meter whose payload lacks its register) name the line too.

The shift calendar (``core.calendar``) is the asset model's site calendar, the one the platform
plans with, so the simulated machines stop when the platform expects them to. A scenario may carry
its own ``calendar`` only for an asset model that has none (or an identical copy); a calendar, a
time zone or a workshop calendar that would make the two disagree is refused at load.

Durations are seconds (a number) or text with a unit: ``500ms``, ``90s``, ``15min``, ``2h``, ``1d``.
Every duration is simulated time (divided by the speed in an accelerated live run), except three
that are wall-clock time because they are about the wire, not the factory: a meter's publish
``interval``, ``opcua.telemetry_interval`` and ``faults.server_restart.down_for``. Clock times are
local times in the scenario's ``timezone`` (default: the asset model's site timezone).

Behaviour is resolved per machine in layers: ``defaults``, then ``types.<cnc|robot>``, then
``machines.<equipment id>``; a layer sets only what it names (nested sections merge key by key).

Full example (all sections; every section and field except ``assets`` is optional)::

    version: 1
    name: Small test factory
    assets: small-assets.yaml          # relative to this file
    seed: 42
    # site: cq-demo                    # for a park of several sites: the one it simulates (default: the only one)
    timezone: Asia/Shanghai            # default: site.timezone of the asset model

    calendar:                          # only if the asset model has none; no shifts: around the clock
      shifts:
        - name: early
          days: mon-fri                # or a list: [mon, tue, wed]
          start: "06:00"
          end: "14:00"                 # an end at or before the start ends the next day
          breaks:
            - {name: lunch, start: "10:00", end: "10:30"}
        - {name: late, days: mon-fri, start: "14:00", end: "22:00"}
      holidays: [2026-10-01]           # whole days of planned stop

    defaults:                          # every machine
      cycle_time_factor: {low: 1.0, mode: 1.04, high: 1.2}   # x ideal cycle time, triangular
      breakdowns: {mtbf: 6h, mttr: 25min}                   # exponential; mtbf counts producing time
      minor_stops: {mean_interval: 20min, mean_duration: 40s}   # short DOWN
      starvation: {mean_interval: 45min, mean_duration: 3min}   # IDLE: no material, blocked
      changeover:                      # SETUP between programs, after a batch of parts
        programs: [HOUSING-A, HOUSING-B, FLANGE-C]
        batch_parts: [80, 200]         # uniform, inclusive
        setup_time: 20min
        setup_time_spread: 0.25        # setup lasts setup_time x U(1 - spread, 1 + spread)
      quality: {scrap_probability: 0.02, rework_probability: 0.01}
      power_kw: {producing: 18.0, setup: 6.0, idle: 4.0, down: 1.0, planned_stop: 0.3}
      spindle_rpm: [6000, 12000]
      initial_parts: [1000, 9999]      # counters start somewhere in this range, scrap/rework ~3 %
      showcase: false                  # true: the first stops visit every state once (quick demos)
      faults:
        enabled: true                  # false switches every fault below off
        power_cycle: {mean_interval: 3d, off_for: 2min}       # DOWN while off; counters restart at 0
        clock_jump: {mean_interval: 5d, lasts: 10min, jump_to: "2000-01-01T00:00:00Z"}
        server_restart: {mean_interval: 2d, down_for: 5s}     # down_for is wall-clock time
    types:
      robot:
        breakdowns: {mtbf: 12h}        # mttr stays 25min from the defaults
        power_kw: {producing: 6.0, setup: 2.0, idle: 1.5}
    machines:
      cnc-01:
        quality: {scrap_probability: 0.05}
        faults: {enabled: false}

    meters:                            # every meter of the asset model publishes; these tune them
      meter-a:
        topic: plant/energy/meter-a    # default: <settings.simulator.meter_topic_prefix>/<id>
        interval: 5s                   # wall clock, <= report_interval_s; default: simulator.meter_interval_s
        base_load: 2.5                 # kW (electricity) or m³/h (gas, water) the line draws anyway
        nominal_voltage_v: 400
        payload:                       # JSON shape; string leaves "{placeholder}" are substituted
          time: "{ts_epoch}"
          device: "{meter_id}"
          readings: [{name: energy, value: "{energy_kwh}"}, {name: power, value: "{power_kw}"}]
          grid: {u: "{voltage_v}", i: "{current_a}"}
      gas-1:
        supplies: [cnc-01, cnc-02]     # an asset entry names one (electricity) meter; gas/water say here
        flow_m3_h: 0.8                 # per supplied machine while it is producing
        machine_flow_m3_h: {cnc-03: 1.5}   # and cnc-03 (supplied, too) draws more
        payload: {ts: "{ts}", gas: {volume: "{volume_m3}", flow: "{flow_m3_h}"}}

    opcua:
      machines_per_server: 1           # > 1: one asyncua server serves several machines
      telemetry_interval: 1s           # live process values (spindle load, axes, temperatures); 0: off

    history:                           # used by the history generator (simulators.history)
      baseline: {start: 2026-01-01, end: 2026-04-01}     # [start, end), local dates
      assessment: {start: 2026-04-01, end: 2026-07-01}
      improvements:                    # relative changes from baseline to assessment
        efficiency: 0.15               # 15 % fewer unplanned losses (breakdowns, stops, slow cycles)
        defect_rate: 0.30              # 30 % less scrap and rework
        energy_per_part: 0.10          # 10 % less power in every state
      meter_interval: 1min

Placeholders in meter payloads (a string that is exactly one placeholder becomes a JSON number or
string; placeholders inside longer text are formatted into it): ``{ts}`` (ISO-8601 UTC with ``Z``),
``{ts_epoch}`` (epoch seconds), ``{meter_id}``; electricity ``{energy_kwh}`` (cumulative),
``{power_kw}``, ``{voltage_v}``, ``{current_a}``; natural gas and water ``{volume_m3}``
(cumulative) and ``{flow_m3_h}``. A payload must carry its carrier's cumulative register.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.assets import AssetModel, EnergyCarrier, Equipment, EquipmentType, Identifier, Site, load_asset_model
from core.calendar import PlannedBreak as PlannedBreak  # the calendar lives in core; re-exported for the simulators
from core.calendar import Shift as Shift
from core.calendar import ShiftCalendar, check_zone
from core.calendar import Weekday as Weekday
from core.errors import ConfigError
from core.signals import MachineState
from core.yamlconfig import format_loc, line_of, read_yaml, validation_to_config_error

SCENARIO_VERSION = 1
CLOCK_JUMP_DEFAULT = datetime(2000, 1, 1, tzinfo=UTC)
MACHINE_TYPES: frozenset[EquipmentType] = frozenset({EquipmentType.CNC, EquipmentType.ROBOT})

# -- small value types -----------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|sec|min|m|h|d)?\s*$")
_UNIT_S = {None: 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> Any:
    """``90``, ``"90s"``, ``"15min"``, ``"2h"``, ``"1d"`` -> seconds (float); anything else is left to pydantic."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '90s', '15min', '2h', '1d'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration (a number of seconds or text like '90s', '15min', '2h')")
        return float(match.group(1)) * _UNIT_S[match.group(2)]
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Probability = Annotated[float, Field(ge=0, lt=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- machine behaviour -----------------------------------------------------------------------------


class CycleTimeFactor(_Strict):
    """A cycle lasts ideal cycle time x a triangular draw between ``low`` and ``high`` around ``mode``."""

    low: float = Field(default=1.0, ge=0.5)
    mode: float = Field(default=1.05, gt=0)
    high: float = Field(default=1.25, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.low <= self.mode <= self.high:
            raise ValueError(f"need low <= mode <= high, got {self.low}, {self.mode}, {self.high}")
        return self


class Breakdowns(_Strict):
    """Failures: producing time between failures ~ Exp(mtbf), repair time ~ Exp(mttr)."""

    enabled: bool = True
    mtbf: PositiveDuration = 8 * 3600.0
    mttr: PositiveDuration = 30 * 60.0
    min_repair: Duration = 0.0


class MinorStops(_Strict):
    """Short DOWN stops (jams, tool checks): producing time between them ~ Exp(mean_interval)."""

    enabled: bool = True
    mean_interval: PositiveDuration = 30 * 60.0
    mean_duration: PositiveDuration = 45.0


class Starvation(_Strict):
    """IDLE spells (no material, downstream blocked): producing time between them ~ Exp(mean_interval)."""

    enabled: bool = True
    mean_interval: PositiveDuration = 60 * 60.0
    mean_duration: PositiveDuration = 4 * 60.0


class Changeover(_Strict):
    """SETUP between programs: after a batch of parts the machine changes over to the next program."""

    enabled: bool = True
    programs: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=lambda: ["PROGRAM-A", "PROGRAM-B"], min_length=1
    )
    batch_parts: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] = (100, 300)
    setup_time: PositiveDuration = 20 * 60.0
    setup_time_spread: float = Field(default=0.25, ge=0, lt=1)

    @field_validator("batch_parts")
    @classmethod
    def _ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] > value[1]:
            raise ValueError(f"need [min, max] with min <= max, got {list(value)}")
        return value


class QualityRates(_Strict):
    scrap_probability: Probability = 0.02
    rework_probability: Probability = 0.01

    @model_validator(mode="after")
    def _sum_below_one(self) -> Self:
        if self.scrap_probability + self.rework_probability >= 1:
            raise ValueError("scrap_probability + rework_probability must be below 1")
        return self


class PowerDraw(_Strict):
    """Electrical draw of one machine, kW, per canonical state."""

    producing: float = Field(default=8.0, ge=0)
    setup: float = Field(default=3.0, ge=0)
    idle: float = Field(default=2.0, ge=0)
    down: float = Field(default=0.5, ge=0)
    planned_stop: float = Field(default=0.2, ge=0)

    def kw(self, state: MachineState) -> float:
        return float(getattr(self, state.value.lower()))


class PowerCycleFault(_Strict):
    """The machine loses power: DOWN (or still PLANNED_STOP) for ``off_for``, then its counters restart at 0."""

    enabled: bool = True
    mean_interval: PositiveDuration = 3 * 86400.0
    off_for: PositiveDuration = 120.0


class ClockJumpFault(_Strict):
    """The PLC clock falls back to ``jump_to`` for ``lasts`` and runs from there, then is set right again."""

    enabled: bool = True
    mean_interval: PositiveDuration = 5 * 86400.0
    lasts: PositiveDuration = 600.0
    jump_to: datetime = CLOCK_JUMP_DEFAULT

    @field_validator("jump_to")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class ServerRestartFault(_Strict):
    """The OPC UA server goes away for ``down_for`` (wall-clock seconds) and comes back on the same port."""

    enabled: bool = True
    mean_interval: PositiveDuration = 2 * 86400.0
    down_for: PositiveDuration = 5.0


class Faults(_Strict):
    enabled: bool = True
    power_cycle: PowerCycleFault = Field(default_factory=PowerCycleFault)
    clock_jump: ClockJumpFault = Field(default_factory=ClockJumpFault)
    server_restart: ServerRestartFault = Field(default_factory=ServerRestartFault)


class MachineBehaviourSpec(_Strict):
    """How one CNC machine or robot behaves. Every field has a default; layers override what they name."""

    cycle_time_factor: CycleTimeFactor = Field(default_factory=CycleTimeFactor)
    breakdowns: Breakdowns = Field(default_factory=Breakdowns)
    minor_stops: MinorStops = Field(default_factory=MinorStops)
    starvation: Starvation = Field(default_factory=Starvation)
    changeover: Changeover = Field(default_factory=Changeover)
    quality: QualityRates = Field(default_factory=QualityRates)
    power_kw: PowerDraw = Field(default_factory=PowerDraw)
    spindle_rpm: tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]] = (4000.0, 12000.0)
    initial_parts: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]] = (1000, 9999)
    showcase: bool = Field(default=False, description="the first stops visit every canonical state once")
    faults: Faults = Field(default_factory=Faults)

    @field_validator("spindle_rpm", "initial_parts")
    @classmethod
    def _range(cls, value: tuple[Any, Any]) -> tuple[Any, Any]:
        if value[0] > value[1]:
            raise ValueError(f"need [low, high] with low <= high, got {list(value)}")
        return value

    def improved(self, by: Improvements, share: float = 1.0) -> MachineBehaviourSpec:
        """This behaviour with ``share`` (0..1) of the improvements applied (the history's assessment period).

        * efficiency: breakdown, minor-stop and starvation rates and their durations, and the cycle
          time's excess over ideal, each shrink by ``efficiency`` (so losses drop by roughly that share);
        * defect_rate: scrap and rework probabilities shrink by ``defect_rate``;
        * energy_per_part: power in every state shrinks by ``energy_per_part``.
        """
        eff = 1.0 - by.efficiency * share
        dfx = 1.0 - by.defect_rate * share
        enx = 1.0 - by.energy_per_part * share
        ctf = self.cycle_time_factor
        return self.model_copy(
            update={
                "cycle_time_factor": CycleTimeFactor(
                    low=ctf.low, mode=ctf.low + (ctf.mode - ctf.low) * eff, high=ctf.low + (ctf.high - ctf.low) * eff
                ),
                "breakdowns": self.breakdowns.model_copy(
                    update={"mtbf": self.breakdowns.mtbf / eff, "mttr": self.breakdowns.mttr * eff}
                ),
                "minor_stops": self.minor_stops.model_copy(
                    update={"mean_interval": self.minor_stops.mean_interval / eff}
                ),
                "starvation": self.starvation.model_copy(
                    update={
                        "mean_interval": self.starvation.mean_interval / eff,
                        "mean_duration": self.starvation.mean_duration * eff,
                    }
                ),
                "quality": QualityRates(
                    scrap_probability=self.quality.scrap_probability * dfx,
                    rework_probability=self.quality.rework_probability * dfx,
                ),
                "power_kw": PowerDraw(**{name: value * enx for name, value in self.power_kw.model_dump().items()}),
            }
        )


# -- meters ----------------------------------------------------------------------------------------

COMMON_PLACEHOLDERS: frozenset[str] = frozenset({"ts", "ts_epoch", "meter_id"})
CARRIER_PLACEHOLDERS: Mapping[EnergyCarrier, frozenset[str]] = {
    EnergyCarrier.ELECTRICITY: frozenset({"energy_kwh", "power_kw", "voltage_v", "current_a"}),
    EnergyCarrier.NATURAL_GAS: frozenset({"volume_m3", "flow_m3_h"}),
    EnergyCarrier.WATER: frozenset({"volume_m3", "flow_m3_h"}),
}
# The cumulative register each carrier's payload must carry.
REGISTER_PLACEHOLDER: Mapping[EnergyCarrier, str] = {
    EnergyCarrier.ELECTRICITY: "energy_kwh",
    EnergyCarrier.NATURAL_GAS: "volume_m3",
    EnergyCarrier.WATER: "volume_m3",
}
DEFAULT_PAYLOADS: Mapping[EnergyCarrier, dict[str, Any]] = {
    # The shared contract's payload, which the demo's edge config has always read.
    EnergyCarrier.ELECTRICITY: {
        "ts": "{ts}",
        "energy": {"active_import_kwh": "{energy_kwh}"},
        "power": {"active_kw": "{power_kw}"},
        "voltage": {"l1_v": "{voltage_v}"},
    },
    EnergyCarrier.NATURAL_GAS: {"ts": "{ts}", "volume_m3": "{volume_m3}", "flow_m3_h": "{flow_m3_h}"},
    EnergyCarrier.WATER: {"ts": "{ts}", "volume_m3": "{volume_m3}", "flow_m3_h": "{flow_m3_h}"},
}
DEFAULT_BASE_LOAD: Mapping[EnergyCarrier, float] = {
    EnergyCarrier.ELECTRICITY: 1.5,  # kW
    EnergyCarrier.NATURAL_GAS: 0.2,  # m³/h
    EnergyCarrier.WATER: 0.05,  # m³/h
}
DEFAULT_FLOW_M3_H: Mapping[EnergyCarrier, float] = {
    EnergyCarrier.ELECTRICITY: 0.0,
    EnergyCarrier.NATURAL_GAS: 0.6,
    EnergyCarrier.WATER: 0.15,
}

_FORMATTER = string.Formatter()


def template_placeholders(template: Any) -> Iterator[tuple[tuple[str | int, ...], str, bool]]:
    """Every placeholder in a payload template: (path of the leaf, placeholder, leaf is exactly it)."""

    def walk(node: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str, bool]]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, (*path, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, (*path, i))
        elif isinstance(node, str):
            names = [name for _, name, _, _ in _FORMATTER.parse(node) if name is not None]
            exact = len(names) == 1 and node == "{" + names[0] + "}"
            for name in names:
                yield path, name, exact

    yield from walk(template, ())


class MeterSpec(_Strict):
    """One meter's topic, publish interval, payload shape and what its covered machines draw."""

    carrier: EnergyCarrier | None = Field(default=None, description="must match the asset model if given")
    topic: str | None = Field(default=None, min_length=1)
    interval: PositiveDuration | None = None
    payload: dict[str, Any] | None = None
    base_load: float | None = Field(default=None, ge=0, description="kW or m³/h drawn regardless of machines")
    nominal_voltage_v: float = Field(default=400.0, gt=0)
    supplies: list[Identifier] = Field(
        default_factory=list,
        description="gas/water: machines this meter supplies besides those whose asset entry names it",
    )
    flow_m3_h: float | None = Field(default=None, ge=0, description="gas/water per supplied producing machine")
    machine_flow_m3_h: dict[Identifier, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="gas/water: flow of single machines (they are supplied, too)"
    )
    initial_register: float | None = Field(default=None, ge=0, description="default: seeded 10,000-100,000")

    @field_validator("topic")
    @classmethod
    def _topic_is_plain(cls, value: str | None) -> str | None:
        if value is not None and any(c in value for c in "+#\0"):
            raise ValueError("a publish topic cannot contain '+', '#' or NUL")
        return value

    @field_validator("payload")
    @classmethod
    def _payload_is_json_shaped(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None

        def check(node: Any, where: str) -> None:
            if isinstance(node, dict):
                if not node:
                    raise ValueError(f"{where or 'payload'}: an empty mapping carries nothing")
                for key, child in node.items():
                    if not isinstance(key, str) or not key or "." in key:
                        raise ValueError(f"{where or 'payload'}: key {key!r} must be text without dots")
                    check(child, f"{where}.{key}" if where else key)
            elif isinstance(node, list):
                for i, child in enumerate(node):
                    check(child, f"{where}[{i}]")
            elif not (node is None or isinstance(node, str | int | float | bool)):
                raise ValueError(f"{where}: {type(node).__name__} is not a JSON value")
            if isinstance(node, str):
                try:
                    list(_FORMATTER.parse(node))
                except ValueError as exc:
                    raise ValueError(f"{where}: {exc}") from None

        check(value, "")
        return value


class OpcUaSpec(_Strict):
    machines_per_server: int = Field(default=1, ge=1, le=1000)
    telemetry_interval: Duration = Field(default=1.0, description="wall-clock seconds; 0 switches telemetry off")


# -- history ---------------------------------------------------------------------------------------


class Period(_Strict):
    """Local dates ``[start, end)`` in the scenario's timezone."""

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


class Improvements(_Strict):
    """Relative changes from the baseline to the assessment period (0.1 = 10 %); see ``improved``."""

    efficiency: float = Field(default=0.0, ge=0, lt=1)
    defect_rate: float = Field(default=0.0, ge=0, le=1)
    energy_per_part: float = Field(default=0.0, ge=0, lt=1)


class HistorySpec(_Strict):
    baseline: Period
    assessment: Period
    improvements: Improvements = Field(default_factory=Improvements)
    meter_interval: PositiveDuration = 60.0

    @model_validator(mode="after")
    def _assessment_after_baseline(self) -> Self:
        if self.assessment.start < self.baseline.end:
            raise ValueError("the assessment period must start at or after the end of the baseline")
        return self


# -- the file --------------------------------------------------------------------------------------


class Scenario(_Strict):
    """The scenario file as written (``load_scenario`` returns it resolved against its asset model)."""

    version: int = Field(default=SCENARIO_VERSION, ge=1, le=SCENARIO_VERSION)
    name: str = ""
    assets: Path
    seed: int = 1
    site: Identifier | None = Field(default=None, description="the site simulated; default: the park's only site")
    timezone: str | None = None
    calendar: ShiftCalendar | None = Field(default=None, description="default: the asset model's calendar")
    defaults: MachineBehaviourSpec = Field(default_factory=MachineBehaviourSpec)
    types: dict[EquipmentType, MachineBehaviourSpec] = Field(default_factory=dict)
    machines: dict[Identifier, MachineBehaviourSpec] = Field(default_factory=dict)
    meters: dict[Identifier, MeterSpec] = Field(default_factory=dict)
    opcua: OpcUaSpec = Field(default_factory=OpcUaSpec)
    history: HistorySpec | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)

    @field_validator("types")
    @classmethod
    def _machine_types_only(cls, value: dict[EquipmentType, MachineBehaviourSpec]) -> Any:
        for kind in value:
            if kind not in MACHINE_TYPES:
                raise ValueError(f"only machine types have behaviour (cnc, robot), not {kind.value!r}")
        return value


def _merge(base: dict[str, Any], layer: BaseModel) -> dict[str, Any]:
    """``base`` with what ``layer`` explicitly set laid over it, nested models key by key."""
    out = dict(base)
    for name in layer.model_fields_set:
        value = getattr(layer, name)
        if isinstance(value, BaseModel) and isinstance(out.get(name), dict):
            out[name] = _merge(out[name], value)
        elif isinstance(value, BaseModel):
            out[name] = value.model_dump()
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class ResolvedMeter:
    """A meter's effective settings: the scenario's entry over the carrier's defaults."""

    equipment_id: str
    carrier: EnergyCarrier
    topic: str | None  # None: the simulator's default topic prefix
    interval_s: float | None  # None: the simulator's default interval
    payload: dict[str, Any]
    base_load: float
    nominal_voltage_v: float
    # Machines whose state drives this meter: the ones covered in the asset model, and for gas and
    # water also the scenario's ``supplies`` and ``machine_flow_m3_h`` keys.
    machines: tuple[str, ...]
    # gas/water: m³/h each machine draws while producing (electricity: empty, the machines' power_kw counts)
    machine_flow_m3_h: Mapping[str, float]
    initial_register: float | None


@dataclass(frozen=True)
class FactoryScenario:
    """A validated scenario with its asset model: behaviour per machine and settings per meter, resolved."""

    spec: Scenario
    assets: AssetModel
    source: str = "<memory>"
    _machines: dict[str, MachineBehaviourSpec] = field(default_factory=dict, repr=False)

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def site(self) -> Site:
        """The one site of the park that this scenario simulates."""
        return self.assets.one_site(self.spec.site)

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.spec.timezone or self.site.timezone)

    @property
    def calendar(self) -> ShiftCalendar:
        """The scenario's own calendar, else the asset model's site calendar (the platform's)."""
        if self.spec.calendar is not None:
            return self.spec.calendar
        return self.assets.calendar_of(self.site.id)[1]

    def calendar_of(self, equipment_id: str) -> ShiftCalendar:
        """The calendar one machine follows: the scenario's own, else its workshop's or site's in the asset model."""
        if self.spec.calendar is not None:
            return self.spec.calendar
        return self.assets.calendar_of(equipment_id)[1]

    @property
    def machines_per_server(self) -> int:
        return self.spec.opcua.machines_per_server

    def machine_ids(self) -> list[str]:
        """Simulated machines (CNC machines and robots with an ideal cycle time) of the site, in file order."""
        return [eq.id for eq in self.assets.scope(self.site.id) if _is_machine(eq)]

    def meter_ids(self) -> list[str]:
        """Simulated meters (every meter with a carrier) of the site, in file order."""
        return [
            eq.id for eq in self.assets.scope(self.site.id) if eq.type == EquipmentType.METER and eq.carrier is not None
        ]

    def behaviour(self, equipment_id: str) -> MachineBehaviourSpec:
        """The behaviour of one machine: defaults, then its type's layer, then its own."""
        try:
            return self._machines[equipment_id]
        except KeyError:
            raise KeyError(f"{equipment_id!r} is not a simulated machine of {self.source}") from None

    def meter(self, meter_id: str) -> ResolvedMeter:
        eq = self.assets.equipment(meter_id)
        if eq.type != EquipmentType.METER or eq.carrier is None:
            raise KeyError(f"{meter_id!r} is not a meter of {self.assets.source}")
        spec = self.spec.meters.get(meter_id, MeterSpec())
        carrier = eq.carrier
        machines = [c.id for c in self.assets.covered_by(meter_id) if _is_machine(c)]
        flows: dict[str, float] = {}
        if carrier != EnergyCarrier.ELECTRICITY:
            machines += [m for m in [*spec.supplies, *spec.machine_flow_m3_h] if m not in machines]
            default_flow = spec.flow_m3_h if spec.flow_m3_h is not None else DEFAULT_FLOW_M3_H[carrier]
            flows = {m: spec.machine_flow_m3_h.get(m, default_flow) for m in machines}
        return ResolvedMeter(
            equipment_id=meter_id,
            carrier=carrier,
            topic=spec.topic,
            interval_s=spec.interval,
            payload=spec.payload if spec.payload is not None else DEFAULT_PAYLOADS[carrier],
            base_load=spec.base_load if spec.base_load is not None else DEFAULT_BASE_LOAD[carrier],
            nominal_voltage_v=spec.nominal_voltage_v,
            machines=tuple(machines),
            machine_flow_m3_h=flows,
            initial_register=spec.initial_register,
        )


def _is_machine(eq: Equipment) -> bool:
    return eq.type in MACHINE_TYPES and eq.ideal_cycle_time_s is not None


def _check_calendar_agrees(
    spec: Scenario, site: Site, assets: AssetModel, fail: Callable[[tuple[str | int, ...], str], ConfigError]
) -> None:
    """The simulated machines must keep the hours the platform's calendar plans, in the same zone."""
    if spec.calendar is not None and site.calendar is not None and spec.calendar != site.calendar:
        raise fail(
            ("calendar",),
            f"differs from the site calendar of {assets.source}, which the platform plans with: "
            "remove this section (the scenario then follows the asset model) or make the two the same",
        )
    if site.calendar is not None and spec.timezone is not None and spec.timezone != site.timezone:
        raise fail(("timezone",), f"the site calendar of {assets.source} is in {site.timezone}, not {spec.timezone}")
    effective = spec.calendar if spec.calendar is not None else (site.calendar or ShiftCalendar())
    for workshop in site.workshops:
        if workshop.calendar is not None and workshop.calendar != effective:
            raise fail(
                ("calendar",) if spec.calendar is not None else ("assets",),
                f"workshop {workshop.id!r} of {assets.source} has its own calendar; the simulators follow "
                "one calendar for the whole factory so far, so its machines would disagree with the platform",
            )


def resolve_scenario(
    spec: Scenario,
    assets: AssetModel,
    *,
    source: str = "<memory>",
    index: dict[tuple[str | int, ...], int] | None = None,
) -> FactoryScenario:
    """Cross-check ``spec`` against ``assets`` and resolve every machine's behaviour; ConfigError on problems."""
    index = index or {}

    def fail(loc: tuple[str | int, ...], reason: str) -> ConfigError:
        return ConfigError(source, reason, line=line_of(index, loc), field=format_loc(loc))

    try:
        site = assets.one_site(spec.site)
    except (KeyError, ValueError) as exc:
        raise fail(("site",), str(exc.args[0])) from None
    in_site = {eq.id for eq in assets.scope(site.id)}
    _check_calendar_agrees(spec, site, assets, fail)

    for eq_id in spec.machines:
        if eq_id not in in_site:
            raise fail(("machines", eq_id), f"no equipment {eq_id!r} in site {site.id!r} of {assets.source}")
        if not _is_machine(assets.equipment(eq_id)):
            raise fail(("machines", eq_id), f"{eq_id!r} is not a CNC machine or robot, so it has no behaviour")

    machines: dict[str, MachineBehaviourSpec] = {}
    base = spec.defaults.model_dump()
    for eq in assets.scope(site.id):
        if not _is_machine(eq):
            continue
        merged = base
        layers: list[tuple[tuple[str | int, ...], MachineBehaviourSpec]] = []
        if eq.type in spec.types:
            layers.append((("types", eq.type.value), spec.types[eq.type]))
        if eq.id in spec.machines:
            layers.append((("machines", eq.id), spec.machines[eq.id]))
        for loc, layer in layers:
            merged = _merge(merged, layer)
            try:
                MachineBehaviourSpec.model_validate(merged)
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                raise fail((*loc, *first["loc"]), f"{first['msg']} (after laying it over the layers below)") from exc
        machines[eq.id] = MachineBehaviourSpec.model_validate(merged)

    for meter_id, meter in spec.meters.items():
        loc = ("meters", meter_id)
        if meter_id not in in_site:
            raise fail(loc, f"no equipment {meter_id!r} in site {site.id!r} of {assets.source}")
        eq = assets.equipment(meter_id)
        if eq.type != EquipmentType.METER or eq.carrier is None:
            raise fail(loc, f"{meter_id!r} is a {eq.type.value}, not a meter")
        if meter.carrier is not None and meter.carrier != eq.carrier:
            raise fail(
                (*loc, "carrier"), f"the asset model says {eq.carrier.value}, the scenario {meter.carrier.value}"
            )
        if meter.interval is not None and meter.interval > eq.report_interval_s:
            raise fail(
                (*loc, "interval"),
                f"{meter.interval:g} s is longer than the meter's report_interval_s ({eq.report_interval_s:g} s in "
                f"{assets.source}): the platform would see gaps between its readings",
            )
        if eq.carrier == EnergyCarrier.ELECTRICITY:
            for name in ("supplies", "flow_m3_h", "machine_flow_m3_h"):
                if name in meter.model_fields_set:
                    raise fail(
                        (*loc, name),
                        "for gas and water meters only; an electricity meter covers the machines whose "
                        "asset entry names it and adds up their power_kw",
                    )
        supplied: list[tuple[tuple[str | int, ...], str]] = [
            *(((*loc, "supplies", i), m) for i, m in enumerate(meter.supplies)),
            *(((*loc, "machine_flow_m3_h", m), m) for m in meter.machine_flow_m3_h),
        ]
        for where, machine_id in supplied:
            if machine_id not in in_site or not _is_machine(assets.equipment(machine_id)):
                raise fail(where, f"{machine_id!r} is not a simulated machine (CNC or robot) of {assets.source}")
        if meter.payload is not None:
            allowed = COMMON_PLACEHOLDERS | CARRIER_PLACEHOLDERS[eq.carrier]
            register = REGISTER_PLACEHOLDER[eq.carrier]
            found_register = False
            for path, name, exact in template_placeholders(meter.payload):
                if name not in allowed:
                    raise fail(
                        (*loc, "payload", *path),
                        f"unknown placeholder {{{name}}} for a {eq.carrier.value} meter "
                        f"(known: {', '.join(sorted(allowed))})",
                    )
                found_register = found_register or (name == register and exact)
            if not found_register:
                raise fail(
                    (*loc, "payload"),
                    f'the payload must carry the cumulative register as a leaf that is exactly "{{{register}}}"',
                )

    return FactoryScenario(spec=spec, assets=assets, source=source, _machines=machines)


def load_scenario(path: Path | str) -> FactoryScenario:
    """Load a scenario file and its asset model; every problem raises ConfigError naming file, line and field."""
    path = Path(path)
    data, index = read_yaml(path)
    if data is None:
        raise ConfigError(str(path), "file is empty")
    if not isinstance(data, dict):
        raise ConfigError(str(path), "a scenario is a mapping of sections", line=1)
    try:
        spec = Scenario.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(path, exc, index) from exc
    assets_path = spec.assets if spec.assets.is_absolute() else path.parent / spec.assets
    if not assets_path.is_file():
        raise ConfigError(
            str(path), f"asset file {assets_path} does not exist", line=line_of(index, ("assets",)), field="assets"
        )
    spec = spec.model_copy(update={"assets": assets_path})
    return resolve_scenario(spec, load_asset_model(assets_path), source=str(path), index=index)


def default_scenario(assets: AssetModel, seed: int = 1, *, site: str | None = None) -> FactoryScenario:
    """One site of the park without a scenario file: around the clock, busy, and quick to show every state.

    ``site`` defaults to the park's only site (KeyError for an unknown one, ValueError when the park
    has several and none is named).

    Durations scale with each machine's ideal cycle time (a stop lasts a few cycles), so the demo's
    3-6 s machines move at a believable pace and a test factory with 0.3 s cycles goes through
    every state within seconds. No faults: they are what scenario files are for.
    """
    chosen = assets.one_site(site)
    machines: dict[str, MachineBehaviourSpec] = {}
    for eq in assets.scope(chosen.id):
        if not _is_machine(eq):
            continue
        assert eq.ideal_cycle_time_s is not None
        machines[eq.id] = default_behaviour(eq.ideal_cycle_time_s)
    spec = Scenario(assets=Path(assets.source), seed=seed, site=chosen.id, name="defaults from the asset model")
    return FactoryScenario(spec=spec, assets=assets, source=f"defaults for {assets.source}", _machines=machines)


def default_behaviour(ideal_cycle_time_s: float) -> MachineBehaviourSpec:
    """Behaviour without a scenario file; every duration in multiples of the ideal cycle time."""
    c = ideal_cycle_time_s
    return MachineBehaviourSpec(
        cycle_time_factor=CycleTimeFactor(low=1.0, mode=1.1, high=1.25),
        breakdowns=Breakdowns(mtbf=35 * c, mttr=4 * c, min_repair=c),
        minor_stops=MinorStops(enabled=False),
        starvation=Starvation(mean_interval=25 * c, mean_duration=3.5 * c),
        changeover=Changeover(programs=["PROGRAM-A", "PROGRAM-B"], batch_parts=(40, 40), setup_time=4.5 * c),
        quality=QualityRates(scrap_probability=0.05, rework_probability=0.0),
        power_kw=PowerDraw(),
        showcase=True,
        faults=Faults(enabled=False),
    )
