"""InfluxQL the dashboards and alerts send: ratios from sums of rollup base quantities, never averages.

Ratios do not add up across machines or hours; base quantities do (docs/kpi.md). Every ratio here is
a quotient of ``sum()`` over the rows in scope, so a workshop's OEE over a week is the workshop's,
not a mean of its machines' days. Rollup measurements are named with the retention policy they live
in when ``store.influx_rollup_retention_policy`` is set (the build option ``rollup_retention_policy``).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.signals import Measurement

FEED_INDICATOR = Measurement.INDICATOR.value  # written by kpi.dashboards.feed
FEED_SHIFT = Measurement.SHIFT.value
FEED_RULE = Measurement.CERTIFICATION_RULE.value

# InfluxQL expressions of sums over rollup rows (field names of kpi.base.BaseQuantities.to_fields).
OEE = 'sum("ideal_time_s") / sum("planned_busy_time_s") * sum("parts_good") / sum("parts_produced")'
AVAILABILITY = 'sum("production_time_s") / sum("planned_busy_time_s")'
EFFECTIVENESS = 'sum("ideal_time_s") / sum("production_time_s")'
QUALITY = 'sum("parts_good") / sum("parts_produced")'
UPLOAD_RATE = 'sum("received_samples") / sum("expected_samples")'
STATE_COVERAGE = 'sum("covered_s") / sum("expected_s")'
COUNTER_COVERAGE = 'sum("counter_covered_s") / sum("expected_s")'
KWH_PER_GOOD_PART = 'sum("energy_kwh") / sum("parts_good")'

# Filters on the template variables, from the park down to the machine.
SITE = '"site" =~ /^$site$/'
WORKSHOP = f'{SITE} AND "workshop" =~ /^$workshop$/'
LINE = f'{WORKSHOP} AND "line" =~ /^$line$/'
MACHINE = f'{LINE} AND "equipment" =~ /^$machine$/'


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the dashboards read: the rollups' retention policy, if they have their own."""

    rollup_retention_policy: str | None = None

    def _rollup(self, measurement: str) -> str:
        if self.rollup_retention_policy is None:
            return f'"{measurement}"'
        return f'"{self.rollup_retention_policy}"."{measurement}"'

    @property
    def hourly(self) -> str:
        return self._rollup(Measurement.BASE_HOURLY.value)

    @property
    def daily(self) -> str:
        return self._rollup(Measurement.BASE_DAILY.value)

    # The feed's measurements are kept with the rollups: they summarise them.
    @property
    def indicator(self) -> str:
        return self._rollup(FEED_INDICATOR)

    @property
    def shift(self) -> str:
        return self._rollup(FEED_SHIFT)

    @property
    def rule(self) -> str:
        return self._rollup(FEED_RULE)


STATE = f'"{Measurement.STATE.value}"'
COUNTER = f'"{Measurement.COUNTER.value}"'
ENERGY = f'"{Measurement.ENERGY.value}"'
PROCESS = f'"{Measurement.PROCESS.value}"'


def tag_values(measurement: str, key: str, where: str | None = None) -> str:
    query = f'SHOW TAG VALUES FROM {measurement} WITH KEY = "{key}"'
    return query if where is None else f"{query} WHERE {where}"
