"""The web part: pages for people (sign-in, overview, report viewer) and the report service behind them.

``install(app, settings)`` is called once by ``api.app.create_app``: it builds the report service
(Certifier, site keys, archive under ``api.reports_dir``), serves the pages and their static files
(``/ui/static``: the stylesheet and two small scripts; nothing comes from a CDN).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api.context import AppContext
from api.report_service import ReportArchive, ReportError, ReportService, software_version
from api.web import pending  # TEMP until the certification and reporting branches land
from api.web.pages import router as pages_router
from core.settings import Settings

STATIC = Path(__file__).parent / "static"


def site_keys_dir(settings: Settings) -> Path:
    """TEMP until the reporting branch lands (its settings name the keys' directory)."""
    return settings.api.reports_dir.parent / "site-keys"


def report_service(settings: Settings, context: AppContext) -> ReportService:
    schemes = pending.SchemeRegistry.load()
    certifier = pending.Certifier(context.engine, context.assets, schemes, software_version())
    return ReportService(
        certifier, context.assets, pending.SiteKeys(site_keys_dir(settings)), ReportArchive(settings.api.reports_dir)
    )


def install(app: FastAPI, settings: Settings) -> None:
    context: AppContext = app.state.context
    app.state.report_service = report_service(settings, context)
    app.include_router(pages_router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")

    @app.exception_handler(ReportError)
    async def _report_error(request: Request, exc: ReportError) -> JSONResponse:
        response: JSONResponse = pending.problem(exc.status, exc.title, exc.detail)
        return response
