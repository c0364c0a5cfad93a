"""Digitalisation indicators (kpi.md section 4): CNC rate, NC share, networking and upload rates.

Pure functions of the asset model's flags and of what the window's telemetry says (which equipment
reported, each one's data coverage, sample counts). Each returns a ``Ratio`` that keeps the members
behind its numerator and denominator, so a report can show which machine or process made the
difference. A ratio with an empty denominator has no value (None), never 0.

"Numerically controlled" is the asset model's ``numerically_controlled`` flag; process industries
set it for DCS/PLC-controlled units too (kpi.md section 4). The spec asks for a CNC rate "confirmed
by telemetry": when ``reporting`` is given, NC equipment counts only if it reported in the window
(an NC machine that stayed silent is not evidence of numerical control); it still counts in the
denominator, so silence lowers the rate instead of shrinking the base.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Literal

from core.assets import Equipment
from kpi.formulas import Direction

CncBasis = Literal["process", "equipment"]
ProcessRule = Literal["all", "any"]


@dataclass(frozen=True, slots=True)
class Member:
    """One unit a ratio counts: an equipment id, or a process step with the equipment serving it."""

    id: str
    counted: bool  # in the numerator (every member is in the denominator)
    reason: str
    equipment: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Ratio:
    numerator: int
    denominator: int
    value: float | None
    members: tuple[Member, ...] = ()

    @property
    def counted(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.members if m.counted)

    @property
    def not_counted(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.members if not m.counted)


def _ratio(members: Iterable[Member]) -> Ratio:
    listed = tuple(members)
    numerator = sum(1 for m in listed if m.counted)
    denominator = len(listed)
    return Ratio(numerator, denominator, numerator / denominator if denominator else None, listed)


def _confirmed_nc(eq: Equipment, reporting: AbstractSet[str] | None) -> tuple[bool, str]:
    if not eq.numerically_controlled:
        return False, "not numerically controlled"
    if reporting is None:
        return True, "numerically controlled"
    if eq.id not in reporting:
        return False, "numerically controlled but did not report in the window"
    return True, "numerically controlled, reported"


def key_process_cnc_rate(
    equipment: Iterable[Equipment],
    basis: CncBasis,
    reporting: AbstractSet[str] | None = None,
    *,
    rule: ProcessRule = "all",
) -> Ratio:
    """Key-process CNC rate (关键工序数控化率).

    ``basis="equipment"``: NC key-process equipment / key-process equipment.
    ``basis="process"``: NC key processes / key processes, where the key processes are the distinct
    ``process_step`` values of the key-process equipment, and the equipment serving a key process
    is the key-process equipment with that step (a machine not marked ``key_process`` does not
    serve it, even under the same step name: it may make another product). With ``rule="all"``
    (default) a process is NC only when every machine serving it is, since a part routed through
    its manual machine is not numerically controlled; ``rule="any"`` counts a process with at
    least one NC machine.
    """
    key_equipment = [eq for eq in equipment if eq.key_process]
    if basis == "equipment":
        return _ratio(Member(eq.id, *_confirmed_nc(eq, reporting)) for eq in key_equipment)

    serving: dict[str, list[Equipment]] = {}
    for eq in key_equipment:
        if not eq.process_step:
            raise ValueError(f"key-process equipment {eq.id!r} names no process step")
        serving.setdefault(eq.process_step, []).append(eq)
    members = []
    for step, machines in serving.items():
        verdicts = [(eq.id, *_confirmed_nc(eq, reporting)) for eq in machines]
        nc = [ok for _, ok, _ in verdicts]
        counted = all(nc) if rule == "all" else any(nc)
        failing = "; ".join(f"{eq_id} {why}" for eq_id, ok, why in verdicts if not ok)
        if counted:
            reason = f"{sum(nc)} of {len(nc)} machines NC" + (f" (rule 'any'; {failing})" if failing else "")
        else:
            reason = failing
        members.append(Member(step, counted, reason, tuple(eq_id for eq_id, _, _ in verdicts)))
    return _ratio(members)


def nc_share(equipment: Iterable[Equipment], reporting: AbstractSet[str] | None = None) -> Ratio:
    """NC share of production equipment (数控设备占比): NC equipment that makes parts / equipment that makes parts.

    ``reporting`` has the same meaning as for ``key_process_cnc_rate``.
    """
    return _ratio(Member(eq.id, *_confirmed_nc(eq, reporting)) for eq in equipment if eq.produces_parts)


def networking_rate(equipment: Iterable[Equipment], coverage: Mapping[str, float | None], threshold: float) -> Ratio:
    """Equipment networking rate (设备联网率): digital equipment whose coverage ≥ threshold / digital equipment.

    ``coverage`` is each equipment's share of the window with data; an id missing from it, or
    None, had no data. The threshold is the scheme's upload-rate threshold (e.g. 0.9).
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold {threshold!r} is not a share in [0, 1]")
    members = []
    for eq in equipment:
        if not eq.is_digital:
            continue
        share = coverage.get(eq.id)
        if share is None:
            members.append(Member(eq.id, False, "no data in the window"))
            continue
        if not (math.isfinite(share) and 0.0 <= share <= 1.0):
            raise ValueError(f"coverage of {eq.id!r} is {share!r}: not a share in [0, 1]")
        if share >= threshold:
            members.append(Member(eq.id, True, f"coverage {share:.4g} ≥ {threshold:.4g}"))
        else:
            members.append(Member(eq.id, False, f"coverage {share:.4g} < {threshold:.4g}"))
    return _ratio(members)


def upload_rate(received: int, expected: int) -> float | None:
    """Data upload rate (数据上传率): received / expected sample slots; None when none was expected.

    The caller counts at most one received sample per expected slot, so the rate never exceeds 1;
    more received than expected is the caller's bug and raises instead of being clipped.
    """
    if received < 0 or expected < 0:
        raise ValueError(f"sample counts cannot be negative (received {received}, expected {expected})")
    if received > expected:
        raise ValueError(f"received {received} > expected {expected}: received slots must be capped per slot")
    return received / expected if expected else None


@dataclass(frozen=True)
class DigitalInputs:
    """What the digitalisation indicators of one scope and window are computed from."""

    equipment: tuple[Equipment, ...]
    networking_threshold: float  # the scheme's upload-rate threshold
    reporting: frozenset[str] | None = None
    coverage: Mapping[str, float | None] = field(default_factory=dict)
    received_samples: int = 0
    expected_samples: int = 0
    cnc_basis: CncBasis = "process"


@dataclass(frozen=True, slots=True)
class DigitalKpiDescription:
    key: str
    label_en: str
    label_zh: str
    unit: str
    direction: Direction
    compute: Callable[[DigitalInputs], Ratio]


def _upload(inputs: DigitalInputs) -> Ratio:
    value = upload_rate(inputs.received_samples, inputs.expected_samples)
    return Ratio(inputs.received_samples, inputs.expected_samples, value)


DIGITAL_KPIS: tuple[DigitalKpiDescription, ...] = (
    DigitalKpiDescription(
        "key_process_cnc_rate",
        "Key-process CNC rate",
        "关键工序数控化率",
        "ratio",
        Direction.UP,
        lambda i: key_process_cnc_rate(i.equipment, i.cnc_basis, i.reporting),
    ),
    DigitalKpiDescription(
        "nc_share",
        "NC share of production equipment",
        "数控设备占比",
        "ratio",
        Direction.UP,
        lambda i: nc_share(i.equipment, i.reporting),
    ),
    DigitalKpiDescription(
        "networking_rate",
        "Equipment networking rate",
        "设备联网率",
        "ratio",
        Direction.UP,
        lambda i: networking_rate(i.equipment, i.coverage, i.networking_threshold),
    ),
    DigitalKpiDescription("upload_rate", "Data upload rate", "数据上传率", "ratio", Direction.UP, _upload),
)
