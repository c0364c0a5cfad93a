"""The web part: pages for people (sign-in, overview, report viewer) and the report service behind them.

``install(app, settings)`` is called once by ``api.app.create_app``: it builds the report service
(Certifier, site keys, archive under ``api.reports_dir``), serves the pages and their static files
(``/ui/static``: the stylesheet and two small scripts; nothing comes from a CDN).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api.context import AppContext
from api.problems import problem, problem_type
from api.report_service import ReportArchive, ReportError, ReportService, software_version
from api.reporting import SiteKeys
from api.web.pages import ReportSuggestion
from api.web.pages import router as pages_router
from core.settings import Settings
from kpi.certification import Certifier
from kpi.schemes import SchemeRegistry

STATIC = Path(__file__).parent / "static"
_SLUGS = {404: "report-not-found", 409: "report-conflict", 422: "invalid-report-request", 500: "report-failed"}


def report_service(settings: Settings, context: AppContext) -> ReportService:
    schemes = SchemeRegistry.from_settings(settings.certification)
    certifier = Certifier(context.engine, context.assets, context.inputs, schemes, software_version())
    return ReportService(
        certifier, context.assets, SiteKeys(settings.reports.keys_dir), ReportArchive(settings.api.reports_dir)
    )


def suggest_report(
    app: FastAPI,
    scope: str,
    assessment: tuple[date, date],
    baseline: tuple[date, date] | None = None,
    scheme: str | None = None,
) -> None:
    """Pre-fill the report form with these (local dates [start, end)); the demo suggests its history's weeks."""
    app.state.report_suggestion = ReportSuggestion(scope, baseline, assessment, scheme)


def install(app: FastAPI, settings: Settings) -> None:
    context: AppContext = app.state.context
    app.state.report_service = report_service(settings, context)
    app.include_router(pages_router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")

    @app.exception_handler(ReportError)
    async def _report_error(request: Request, exc: ReportError) -> JSONResponse:
        slug = _SLUGS.get(exc.status, "report-failed")
        return problem(exc.status, exc.title, exc.detail, type=problem_type(slug), instance=request.url.path)
