"""``GET /v1/kpi``: ISO 22400 KPIs of one scope over one window, with their evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime

from api.deps import AssetsDep, EngineDep, Viewer
from api.models import KpiReportPublic
from kpi.report import KpiReport

router = APIRouter(prefix="/v1", tags=["kpi"])

DEFAULT_WINDOW = timedelta(hours=1)
MAX_WINDOW = timedelta(days=366)


def _invalid(field: str, message: str, value: Any) -> RequestValidationError:
    # Same shape as FastAPI's own 422s, so a client handles every validation error alike.
    return RequestValidationError([{"type": "value_error", "loc": ("query", field), "msg": message, "input": value}])


@router.get("/kpi", response_model=KpiReportPublic, responses={404: {"description": "unknown scope"}})
async def kpi_report(
    engine: EngineDep,
    assets: AssetsDep,
    _: Viewer,
    scope: Annotated[str, Query(description="site, workshop, line or equipment id")],
    start: Annotated[AwareDatetime | None, Query(description="ISO-8601 with timezone; default end - 1 h")] = None,
    end: Annotated[AwareDatetime | None, Query(description="ISO-8601 with timezone; default now")] = None,
) -> KpiReport:
    end = end or datetime.now(UTC)
    start = start or end - DEFAULT_WINDOW
    if end <= start:
        raise _invalid("end", f"end ({end.isoformat()}) must be after start ({start.isoformat()})", end.isoformat())
    if end - start > MAX_WINDOW:
        raise _invalid("start", f"the window may span at most {MAX_WINDOW.days} days", start.isoformat())
    if not assets.has_scope(scope):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"unknown scope {scope!r}: not a site, workshop, line or equipment id"
        )
    return await engine.report(scope, start.astimezone(UTC), end.astimezone(UTC))
