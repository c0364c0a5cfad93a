"""The certification report as data: what scheme evaluation produces and every rendering reads.

A report answers an auditor's question for one scope (a park, site, workshop or line) under one
scheme: for each rule, the value behind it (and the baseline's, for a relative rule), the threshold,
the verdict and the evidence (base quantities, business inputs and their versions, coverage). The
canonical JSON of ``CertificationReport`` is what is hashed and signed (``api.reporting``); HTML,
CSV and PDF are renderings of it in Chinese or English.

Verdicts: ``pass`` and ``fail`` only where the evidence supports a number; a rule whose value (or
baseline) is withheld or flagged is ``insufficient_evidence``. The overall verdict is ``fail`` if any
rule fails, else ``insufficient_evidence`` if any rule lacks evidence, else ``pass``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

Verdict = Literal["pass", "fail", "insufficient_evidence"]
# at_least / at_most: the assessment value against an absolute threshold.
# increase_by / reduce_by: relative change from baseline to assessment, threshold as a fraction
#   (increase_by 0.2: assessment >= 1.2 x baseline; reduce_by 0.2: assessment <= 0.8 x baseline).
Comparison = Literal["at_least", "at_most", "increase_by", "reduce_by"]
MetricStatus = Literal["ok", "insufficient_evidence", "flagged"]
Language = Literal["zh", "en"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Period(_Frozen):
    """[start, end) in UTC; ``label`` is how a person names it (local dates of the scope's site)."""

    start: datetime
    end: datetime
    label: str


class InputUsed(_Frozen):
    """One business input (one version of one entry) a value rests on."""

    entry_id: str
    version: int
    kind: str
    site: str
    period_start: date
    period_end: date
    value: float
    unit: str
    entered_by: str
    entered_at: datetime


class MetricValue(_Frozen):
    """A metric over one period, with what it rests on."""

    value: float | None
    unit: str
    status: MetricStatus
    coverage: float | None
    reason: str | None = None
    base: dict[str, float]  # base quantities behind the value (seconds, counts, kWh, kgce ...)
    inputs: list[InputUsed]


class SeriesPoint(_Frozen):
    """The rule's metric over one bucket (a local month) of the baseline or assessment period."""

    key: str
    period: Literal["baseline", "assessment"]
    start: datetime
    end: datetime
    value: float | None
    status: MetricStatus


class RuleResult(_Frozen):
    id: str
    metric: str
    definition: str | None
    label_en: str
    label_zh: str
    unit: str
    comparison: Comparison
    threshold: float
    baseline: MetricValue | None  # relative rules only
    assessment: MetricValue
    change: float | None  # relative rules: (assessment - baseline) / baseline; None where either is missing
    target: float | None  # the value the assessment had to reach (e.g. 0.8 x baseline); absolute: threshold
    verdict: Verdict
    reason: str | None = None  # why insufficient_evidence (or why it failed, in words)
    series: list[SeriesPoint]


class SchemeRef(_Frozen):
    id: str
    version: str
    title_en: str
    title_zh: str
    sha256: str  # of the scheme file's bytes


class Provenance(_Frozen):
    software_version: str
    scheme_version: str
    asset_model_sha256: str
    input_versions: list[tuple[str, int]]  # (entry id, version) of every business input used, sorted
    query: dict[str, str]  # the request's parameters, as given
    generated_at: datetime


class CertificationReport(_Frozen):
    report_id: str  # content-derived: the same query over the same data gives the same id
    language: Language
    scheme: SchemeRef
    scope: str
    scope_kind: Literal["park", "site", "workshop", "line", "equipment"]
    scope_name: str
    sites: list[str]
    baseline: Period | None
    assessment: Period
    rules: list[RuleResult]
    verdict: Verdict
    provenance: Provenance


def overall_verdict(verdicts: list[Verdict]) -> Verdict:
    if "fail" in verdicts:
        return "fail"
    if "insufficient_evidence" in verdicts or not verdicts:
        return "insufficient_evidence"
    return "pass"
