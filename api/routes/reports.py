"""``/v1/reports``: generate a signed certification report, list the archive, read and download reports.

Every read checks the archived file against the public key of the scope's site (``api.report_service``).
Auditors (and above) read and generate; a key bound to a site sees that site's reports only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AssetsDep, Auditor, Caller, require_scope
from api.problems import ApiProblem
from api.report_service import MEDIA_TYPES, Format, ReportQuery, ReportService, StoredReport
from kpi.certification_models import Language, Verdict

router = APIRouter(prefix="/v1/reports", tags=["reports"])


def get_report_service(request: Request) -> ReportService:
    return cast(ReportService, request.app.state.report_service)


ReportServiceDep = Annotated[ReportService, Depends(get_report_service)]


class ReportRequest(BaseModel):
    """What to evaluate: periods are local dates of the scope's site, each [start, end)."""

    model_config = ConfigDict(extra="forbid")

    scope: str = Field(description="park, site, workshop or line id", max_length=64)
    scheme: str = Field(description="scheme id, e.g. pilot_targets", max_length=64)
    baseline_start: date | None = Field(default=None, description="first day of the baseline (relative rules)")
    baseline_end: date | None = Field(default=None, description="the day after the baseline's last day")
    assessment_start: date
    assessment_end: date = Field(description="the day after the assessment's last day")
    language: Language = "en"

    def query(self) -> ReportQuery:
        if (self.baseline_start is None) != (self.baseline_end is None):
            raise ApiProblem(
                422, "Invalid period", "give both baseline_start and baseline_end, or neither", slug="invalid-period"
            )
        baseline = (self.baseline_start, self.baseline_end) if self.baseline_start and self.baseline_end else None
        return ReportQuery(
            scope=self.scope,
            scheme=self.scheme,
            assessment=(self.assessment_start, self.assessment_end),
            baseline=baseline,
            language=self.language,
        )


class VerificationPublic(BaseModel):
    verified: bool
    reason: str | None = Field(description="why it fails verification; null when verified")
    key: str | None = Field(description="whose public key it was checked against (site id, or the park's)")
    fingerprint: str | None = Field(description="SHA-256 (hex) of that public key's DER SubjectPublicKeyInfo")


class ReportLinks(BaseModel):
    self: str
    json_: str = Field(alias="json")
    csv: str
    html: str
    pdf: str

    model_config = ConfigDict(populate_by_name=True)


class ReportPublic(BaseModel):
    """An archived report: what it claims and whether the claim holds (checked on this read)."""

    id: str = Field(description="archive id: the report id and the moment it was archived")
    report_id: str | None
    scope: str | None
    scope_name: str | None
    scheme: str | None
    language: Language
    verdict: Verdict | None = Field(
        description="the overall verdict; null unless the file verifies (a claim is no verdict)"
    )
    generated_at: datetime | None
    size: int
    verification: VerificationPublic
    links: ReportLinks


class ReportListPublic(BaseModel):
    reports: list[ReportPublic]


def links_of(archive_id: str) -> ReportLinks:
    base = f"/v1/reports/{archive_id}"
    return ReportLinks(self=base, json=f"{base}.json", csv=f"{base}.csv", html=f"{base}.html", pdf=f"{base}.pdf")


def public(stored: StoredReport) -> ReportPublic:
    report = stored.report
    return ReportPublic(
        id=stored.archive_id,
        report_id=report.report_id if report else None,
        scope=stored.scope,
        scope_name=report.scope_name if report else None,
        scheme=stored.scheme,
        language=stored.language,
        verdict=stored.verdict if stored.verified else None,
        generated_at=stored.generated_at,
        size=stored.size,
        verification=VerificationPublic(
            verified=stored.verified, reason=stored.reason, key=stored.signer, fingerprint=stored.fingerprint
        ),
        links=links_of(stored.archive_id),
    )


def visible(caller: Caller, stored: StoredReport) -> bool:
    return stored.scope is not None and caller.may_see(stored.site)


async def read_visible(service: ReportService, caller: Caller, archive_id: str) -> tuple[StoredReport, bytes]:
    stored, data = await run_in_threadpool(service.read, archive_id)
    if not visible(caller, stored):
        raise ApiProblem(
            status.HTTP_403_FORBIDDEN,
            "Outside the key's scope",
            f"report {archive_id} is of scope {stored.scope!r}, outside site {caller.site!r} of API key "
            f"{caller.key_id}",
            slug="out-of-scope",
        )
    return stored, data


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReportPublic,
    responses={403: {"description": "scope outside the key's site"}, 404: {"description": "unknown scope"}},
)
async def generate_report(
    body: ReportRequest, caller: Auditor, assets: AssetsDep, service: ReportServiceDep, response: Response
) -> ReportPublic:
    query = body.query()
    require_scope(caller, assets, query.scope)
    archive_id = await service.generate(query)
    stored, _ = await run_in_threadpool(service.read, archive_id)
    response.headers["Location"] = f"/v1/reports/{archive_id}"
    return public(stored)


@router.get("", response_model=ReportListPublic)
async def list_reports(caller: Auditor, service: ReportServiceDep) -> ReportListPublic:
    """Archived reports of the scopes this key may see, newest first, each verified on this read."""
    stored = await run_in_threadpool(service.all)
    return ReportListPublic(reports=[public(s) for s in stored if visible(caller, s)])


@router.get(
    "/{archive_id}.{fmt}",
    response_class=Response,
    responses={
        200: {"content": {t.split(";")[0]: {} for t in MEDIA_TYPES.values()}},
        409: {"description": "the stored report fails verification (renderings only; its JSON is served)"},
    },
)
async def download_report(
    archive_id: str,
    fmt: Format,
    caller: Auditor,
    service: ReportServiceDep,
    lang: Annotated[Language | None, Query(description="rendering language; default the report's")] = None,
) -> Response:
    """The signed JSON byte for byte, or a rendering (CSV, HTML, PDF) of the verified report."""
    stored, data = await read_visible(service, caller, archive_id)
    content = await run_in_threadpool(service.render, stored, data, fmt, lang)
    suffix = "" if fmt == "json" else f"-{lang or stored.language}"
    disposition = "inline" if fmt == "html" else "attachment"
    return Response(
        content,
        media_type=MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'{disposition}; filename="{archive_id}{suffix}.{fmt}"',
            "X-Report-Verified": "true" if stored.verified else "false",
        },
    )


@router.get("/{archive_id}", response_model=ReportPublic)
async def get_report(archive_id: str, caller: Auditor, service: ReportServiceDep) -> ReportPublic:
    stored, _ = await read_visible(service, caller, archive_id)
    return public(stored)
