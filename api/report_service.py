"""Signed certification reports: evaluated, signed with the site's key, archived, verified on every read.

A report is generated once (``ReportService.generate``): the Certifier evaluates the scheme over the
scope, the signed canonical JSON is written to ``api.reports_dir`` as one file per report, named by
the report id and the moment it was archived, and never overwritten. Everything served afterwards
(metadata, JSON, CSV, HTML, PDF) is read back from that file and checked against the public key of
the scope's site first: a file that fails is reported as failing, with the reason, and is not
rendered as if it were a report.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal

from api.reporting import (
    ReportKeyError,
    Signature,
    SigningError,
    SiteKeys,
    key_fingerprint,
    render_csv,
    render_html,
    render_pdf,
    signed_report_bytes,
    verify_report_bytes,
)
from core.assets import AssetModel
from kpi.certification import Certifier
from kpi.certification_models import CertificationReport, Language, Verdict

log = logging.getLogger(__name__)

Format = Literal["json", "csv", "html", "pdf"]
MEDIA_TYPES: dict[Format, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}
MAX_PERIOD_DAYS = 366  # a year, as for GET /v1/kpi
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 1, 1)  # beyond these a date is a typing slip, not a period
_ARCHIVE_ID = re.compile(r"^[A-Za-z0-9_-]{1,160}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def software_version() -> str:
    try:
        return version("smart-factory-platform")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


class ReportError(Exception):
    """A report request that cannot be served; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, title: str, detail: str):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


class ReportArchive:
    """One file per signed report under ``directory``; a file once written is never written again."""

    def __init__(self, directory: Path):
        self.directory = directory

    def save(self, report_id: str, data: bytes, archived_at: datetime) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = f"{_UNSAFE.sub('-', report_id)[:64]}-{archived_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"
        for attempt in range(100):
            archive_id = stem if attempt == 0 else f"{stem}-{attempt}"
            try:
                # "x": exclusive creation, so an existing report is never overwritten, even by a twin.
                with open(self.directory / f"{archive_id}.json", "xb") as file:
                    file.write(data)
                return archive_id
            except FileExistsError:
                continue
        raise ReportError(500, "Archive full", f"100 reports named {stem} already exist")

    def ids(self) -> list[str]:
        """Archive ids, newest first (the name ends with the moment it was archived)."""
        if not self.directory.is_dir():
            return []
        names = [p.stem for p in self.directory.glob("*.json") if _ARCHIVE_ID.match(p.stem)]
        return sorted(names, key=lambda n: (_archived_part(n), n), reverse=True)

    def read(self, archive_id: str) -> bytes:
        if not _ARCHIVE_ID.match(archive_id):
            raise ReportError(404, "Report not found", f"no report {archive_id!r}")
        try:
            return (self.directory / f"{archive_id}.json").read_bytes()
        except FileNotFoundError:
            raise ReportError(404, "Report not found", f"no report {archive_id!r} in the archive") from None


def _archived_part(archive_id: str) -> str:
    match = re.search(r"(\d{8}T\d{12}Z)(?:-\d+)?$", archive_id)
    return match.group(1) if match else ""


@dataclass(frozen=True, slots=True)
class StoredReport:
    """An archived report as read back: what it claims, and whether its signature holds."""

    archive_id: str
    size: int
    scope: str | None
    site: str | None  # whose key signs it: the scope's site (None: a park scope, signed with the park's key)
    signer: str | None
    scheme: str | None
    language: Language
    verdict: Verdict | None
    generated_at: datetime | None
    verified: bool
    reason: str | None
    fingerprint: str | None
    report: CertificationReport | None  # only when verified
    signature: Signature | None  # only when verified


@dataclass(frozen=True, slots=True)
class ReportQuery:
    scope: str
    scheme: str
    assessment: tuple[date, date]
    baseline: tuple[date, date] | None
    language: Language

    def as_query(self) -> dict[str, str]:
        query = {
            "scope": self.scope,
            "scheme": self.scheme,
            "assessment": f"{self.assessment[0].isoformat()}/{self.assessment[1].isoformat()}",
            "language": self.language,
        }
        if self.baseline is not None:
            query["baseline"] = f"{self.baseline[0].isoformat()}/{self.baseline[1].isoformat()}"
        return query


class ReportService:
    def __init__(
        self,
        certifier: Certifier,
        assets: AssetModel,
        keys: SiteKeys,
        archive: ReportArchive,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.certifier = certifier
        self.assets = assets
        self.keys = keys
        self.archive = archive
        self.clock = clock

    def signer_of(self, scope: str) -> str:
        """The key a scope's reports are signed with: its site's; a park's own key for a park scope."""
        return self.assets.site_of(scope) or self.assets.park.id

    async def generate(self, query: ReportQuery) -> str:
        """Evaluate, sign and archive; returns the archive id. The caller has checked role and scope."""
        for name, period in (("assessment", query.assessment), ("baseline", query.baseline)):
            if period is None:
                continue
            if period[1] <= period[0]:
                raise ReportError(
                    422, "Invalid period", f"the {name} period must end after it starts ({period[0]} .. {period[1]})"
                )
            if period[0] < EARLIEST or period[1] > LATEST:
                raise ReportError(
                    422,
                    "Invalid period",
                    f"the {name} period must lie between {EARLIEST} and {LATEST} ({period[0]} .. {period[1]})",
                )
            if (period[1] - period[0]).days > MAX_PERIOD_DAYS:
                raise ReportError(
                    422,
                    "Invalid period",
                    f"the {name} period spans {(period[1] - period[0]).days} days; at most {MAX_PERIOD_DAYS}",
                )
        try:
            self.certifier.schemes.get(query.scheme)
        except KeyError:
            known = ", ".join(s.id for s in self.certifier.schemes.all())
            raise ReportError(422, "Unknown scheme", f"no scheme {query.scheme!r}; known: {known}") from None
        signer = self.signer_of(query.scope)
        try:
            private_key = self.keys.private(signer)
        except ReportKeyError as exc:
            raise ReportError(409, "No signing key", str(exc)) from None
        try:
            report = await self.certifier.evaluate(
                query.scope, query.scheme, query.assessment, query.baseline, query.language, query.as_query()
            )
        except ValueError as exc:  # periods that are not periods (a baseline after the assessment, ...)
            raise ReportError(422, "Invalid period", str(exc)) from None
        except KeyError as exc:  # an unknown scheme or scope (checked above; the Certifier says so too)
            raise ReportError(422, "Unknown scheme or scope", str(exc.args[0]) if exc.args else str(exc)) from None
        try:
            data = signed_report_bytes(report, private_key)
        except SigningError as exc:
            raise ReportError(500, "Report cannot be signed", str(exc)) from exc
        archive_id = self.archive.save(report.report_id, data, self.clock())
        log.info("report %s archived: %s %s %s", archive_id, query.scope, query.scheme, report.verdict)
        return archive_id

    def read(self, archive_id: str) -> tuple[StoredReport, bytes]:
        data = self.archive.read(archive_id)
        return self._verify(archive_id, data), data

    def all(self) -> list[StoredReport]:
        return [self.read(archive_id)[0] for archive_id in self.archive.ids()]

    def _verify(self, archive_id: str, data: bytes) -> StoredReport:
        claimed: dict[str, object] = {}
        try:
            document = json.loads(data)
            if isinstance(document, dict) and isinstance(document.get("report"), dict):
                claimed = document["report"]
        except ValueError:
            pass
        claimed_scope = claimed.get("scope")
        scope = claimed_scope if isinstance(claimed_scope, str) else None
        language: Language = "zh" if claimed.get("language") == "zh" else "en"
        known = scope is not None and self.assets.has_scope(scope)
        site = self.assets.site_of(scope) if scope is not None and known else None
        signer = self.signer_of(scope) if scope is not None and known else None

        def stored(
            ok: bool,
            reason: str | None,
            fingerprint: str | None,
            report: CertificationReport | None,
            signature: Signature | None = None,
        ) -> StoredReport:
            scheme = claimed.get("scheme")
            provenance = claimed.get("provenance")
            generated = provenance.get("generated_at") if isinstance(provenance, dict) else None
            verdict = claimed.get("verdict")
            return StoredReport(
                archive_id=archive_id,
                size=len(data),
                scope=scope,
                site=site,
                signer=signer,
                scheme=str(scheme.get("id")) if isinstance(scheme, dict) else None,
                language=language,
                verdict=verdict if verdict in ("pass", "fail", "insufficient_evidence") else None,
                generated_at=_parse_time(generated),
                verified=ok,
                reason=reason,
                fingerprint=fingerprint,
                report=report,
                signature=signature,
            )

        if scope is None:
            return stored(False, "not a signed report (no report.scope in the file)", None, None)
        if signer is None:
            return stored(False, f"scope {scope!r} is not in the asset model, so no key to check it with", None, None)
        try:
            public_key = self.keys.public(signer)
        except ReportKeyError as exc:
            return stored(False, f"no key of {signer!r} to check the signature with ({exc})", None, None)
        fingerprint = key_fingerprint(public_key)
        result = verify_report_bytes(data, public_key)
        if not result.ok or result.report is None:
            return stored(False, result.reason or "the signature does not verify", fingerprint, None)
        return stored(True, None, fingerprint, result.report, result.signature)

    def render(self, stored: StoredReport, data: bytes, fmt: Format, language: Language | None) -> bytes:
        if fmt == "json":
            return data  # the signed file, byte for byte
        if stored.report is None:
            raise ReportError(
                409,
                "Report fails verification",
                f"report {stored.archive_id} fails verification ({stored.reason}); only its JSON can be downloaded",
            )
        lang = language or stored.report.language
        if fmt == "csv":
            return render_csv(stored.report, lang, stored.signature).encode()
        if fmt == "html":
            return render_html(stored.report, lang, stored.signature).encode()
        return render_pdf(stored.report, lang, stored.signature)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
