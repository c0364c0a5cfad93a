"""The alert rules: a machine down too long, data that stopped arriving, energy per part above its
baseline, KPIs dropping to insufficient evidence (docs/dashboards.md says each in words).

Grafana evaluates them with the same InfluxQL the dashboards use, over relative time ranges; the
thresholds are the fields of ``Alerts``.
"""

from __future__ import annotations

from dataclasses import dataclass

from kpi.dashboards.model import AlertQuery, AlertRule, RuleGroup
from kpi.dashboards.queries import ENERGY, KWH_PER_GOOD_PART, STATE, STATE_COVERAGE, Sources
from kpi.dashboards.words import REPORTED, T


@dataclass(frozen=True, slots=True)
class Alerts:
    sources: Sources
    min_coverage: float  # the KPI engine's: below it a KPI is insufficient evidence
    down_minutes: int = 30
    silent_minutes: int = 15
    energy_factor: float = 1.1

    def rule_group(self) -> RuleGroup:
        s = self.sources
        down = AlertRule(
            "factory-machine-down",
            T("Machine down too long", "设备故障停机超时"),
            T(
                f"{{{{ $labels.equipment }}}} has been DOWN for at least {self.down_minutes} minutes",
                f"设备 {{{{ $labels.equipment }}}} 已故障停机至少{self.down_minutes}分钟",
            ),
            T(
                f"Every state reading of the machine in the last {self.down_minutes} minutes says DOWN (the edge "
                "re-sends the state at least every report interval).",
                f"最近{self.down_minutes}分钟内该设备的每次状态上报均为故障停机（边缘网关至少每个上报周期重发一次状态）。",
            ),
            (
                AlertQuery(
                    "down_readings",
                    f'SELECT count("value") FROM {STATE} WHERE "signal" = \'state\' AND "value" = \'DOWN\' '
                    "AND $timeFilter "
                    'GROUP BY "site", "equipment"',
                    self.down_minutes * 60,
                ),
                AlertQuery(
                    "readings",
                    f'SELECT count("value") FROM {STATE} WHERE "signal" = \'state\' AND $timeFilter '
                    'GROUP BY "site", "equipment"',
                    self.down_minutes * 60,
                ),
            ),
            "$down_readings >= $readings && $readings > 0",
            pending="1m",
            severity="critical",
        )
        silent = AlertRule(
            "factory-data-stopped",
            T("Data stopped arriving", "数据中断"),
            T(
                "No data from {{ $labels.equipment }} for {{ $labels.site }}",
                "{{ $labels.site }} 的 {{ $labels.equipment }} 未收到数据",
            ),
            T(
                f"A machine or meter that reported in the last day sent nothing for {self.silent_minutes} minutes: "
                "its gateway, its connection or the meter stopped.",
                f"最近一天内有上报的设备或计量表已连续{self.silent_minutes}分钟没有数据：其网关、连接或计量表已停止工作。",
            ),
            (
                # count("quality"): every point has it, a string in both measurements; "value" is a string
                # in one and a float in the other, and InfluxDB then answers for one measurement only.
                AlertQuery(
                    "readings_per_5m",
                    f'SELECT count("quality") FROM {STATE}, {ENERGY} WHERE "signal" =~ /^({REPORTED})$/ '
                    'AND $timeFilter GROUP BY time(5m), "site", "equipment" fill(0)',
                    24 * 3600,
                ),
            ),
            "$readings_per_5m < 1",
            pending=f"{self.silent_minutes}m",
            severity="critical",
        )
        per_part = f'SELECT {KWH_PER_GOOD_PART} FROM {s.hourly} WHERE $timeFilter GROUP BY "site"'
        energy = AlertRule(
            "factory-energy-above-baseline",
            T("Energy per good part above baseline", "单位产品能耗高于基准"),
            T(
                "Electricity per good part of {{ $labels.site }} is above its baseline",
                "{{ $labels.site }} 的单位合格产品电耗高于基准值",
            ),
            T(
                f"kWh per good part over the last settled day is more than {self.energy_factor:.0%} of the previous "
                "28 days' (hourly rollups).",
                f"最近一个已结算日的单位合格产品电耗超过此前28天数值的{self.energy_factor:.0%}（按小时汇总数据）。",
            ),
            (
                AlertQuery("day", per_part, 26 * 3600, 2 * 3600),
                AlertQuery(
                    "baseline",
                    per_part,
                    29 * 86400,
                    26 * 3600,
                ),
            ),
            f"$day > {self.energy_factor} * $baseline",
            pending="1h",
        )
        evidence = AlertRule(
            "factory-insufficient-evidence",
            T("KPI drops to insufficient evidence", "指标证据不足"),
            T(
                "KPIs of {{ $labels.equipment }} are insufficient evidence",
                "{{ $labels.equipment }} 的指标为证据不足",
            ),
            T(
                "Over the last settled 24 hours, the machine's state (a meter's register) was known for less than "
                f"{self.min_coverage:.0%} of the time: the KPI engine withholds the KPIs resting on it.",
                f"最近24个已结算小时内，该设备状态（计量表读数）已知时间不足{self.min_coverage:.0%}：指标引擎不再给出依赖它的指标数值。",
            ),
            (
                AlertQuery(
                    "coverage",
                    f'SELECT {STATE_COVERAGE} FROM {s.hourly} WHERE $timeFilter GROUP BY "site", "equipment"',
                    26 * 3600,
                    2 * 3600,
                ),
            ),
            f"$coverage < {self.min_coverage}",
            pending="1h",
        )
        return RuleGroup("factory", 60, (down, silent, energy, evidence))
