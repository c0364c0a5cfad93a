"""Canonical signals: the vocabulary every reading is translated into before it leaves the edge."""

from __future__ import annotations

from enum import StrEnum


class MachineState(StrEnum):
    """Canonical machine states; each maps to exactly one ISO 22400 time element (see kpi.timemodel)."""

    PRODUCING = "PRODUCING"
    IDLE = "IDLE"
    SETUP = "SETUP"
    DOWN = "DOWN"
    PLANNED_STOP = "PLANNED_STOP"


# The state an edge reports when it stops listening to a machine (its session ended, or the edge
# stopped): from then on the machine's state is unknown. Not a canonical state and not a time
# element: the KPI engine counts the time after it as offline (no data) until the next reading.
OFFLINE = "OFFLINE"


class Signal(StrEnum):
    """Signals with a fixed meaning. Free process values (spindle speed, load, …) use any other name."""

    STATE = "state"
    PARTS_TOTAL = "parts_total"
    PARTS_GOOD = "parts_good"
    PARTS_SCRAP = "parts_scrap"
    PARTS_REWORK = "parts_rework"
    PARTS_FIRST_PASS = "parts_first_pass"  # good the first time, without rework (an inspection station's count)
    ENERGY_KWH = "energy_kwh"  # electricity register
    GAS_M3 = "gas_m3"
    WATER_M3 = "water_m3"
    HEAT_MJ = "heat_mj"
    STEAM_KG = "steam_kg"
    COMPRESSED_AIR_M3 = "compressed_air_m3"
    DIESEL_KG = "diesel_kg"
    GASOLINE_KG = "gasoline_kg"


PART_COUNTERS: frozenset[str] = frozenset(
    {Signal.PARTS_TOTAL, Signal.PARTS_GOOD, Signal.PARTS_SCRAP, Signal.PARTS_REWORK, Signal.PARTS_FIRST_PASS}
)
ENERGY_COUNTERS: frozenset[str] = frozenset(
    {
        Signal.ENERGY_KWH,
        Signal.GAS_M3,
        Signal.WATER_M3,
        Signal.HEAT_MJ,
        Signal.STEAM_KG,
        Signal.COMPRESSED_AIR_M3,
        Signal.DIESEL_KG,
        Signal.GASOLINE_KG,
    }
)


class Measurement(StrEnum):
    """Store measurements. Every point carries the tags site, workshop, line, equipment and signal."""

    STATE = "machine_state"  # field value: canonical state (string); field code: raw device code
    COUNTER = "part_counter"  # field value: cumulative count (integer)
    ENERGY = "energy"  # field value: cumulative consumption (float), unit given by the signal name
    PROCESS = "process_value"  # field value: free process value (float)
    BASE_HOURLY = "kpi_base_hourly"  # hourly additive base quantities written by the KPI worker
    BASE_DAILY = "kpi_base_daily"  # their sums per local day of the site
    BASE_MONTHLY = "kpi_base_monthly"  # their sums per local month of the site
    ROLLUP_META = "kpi_rollup_meta"  # per site: the configuration the rollups were computed with
    # Written by the dashboard feed (kpi.dashboards.feed) for what InfluxQL cannot derive from rollups.
    INDICATOR = "kpi_indicator"  # per scope and local day: asset-model, energy-factor and value-added indicators
    SHIFT = "kpi_shift"  # per workshop and shift: OEE and its factors
    CERTIFICATION_RULE = "certification_rule"  # per scope, scheme, rule and day: value, target, verdict


# What the KPI worker writes: kept long, while raw points may expire (store.influx_rollup_retention_policy).
ROLLUP_MEASUREMENTS = frozenset(
    {
        Measurement.BASE_HOURLY,
        Measurement.BASE_DAILY,
        Measurement.BASE_MONTHLY,
        Measurement.ROLLUP_META,
        Measurement.INDICATOR,
        Measurement.SHIFT,
        Measurement.CERTIFICATION_RULE,
    }
)


def measurement_for(signal: str) -> Measurement:
    """Which measurement a canonical signal is stored in."""
    if signal == Signal.STATE:
        return Measurement.STATE
    if signal in PART_COUNTERS:
        return Measurement.COUNTER
    if signal in ENERGY_COUNTERS:
        return Measurement.ENERGY
    return Measurement.PROCESS


class Quality(StrEnum):
    """Quality of a sample, from the OPC UA status code or the edge's own judgement."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"
