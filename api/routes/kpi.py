"""``GET /v1/kpi``: ISO 22400 KPIs of one scope over one window, with their evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime

from api.deps import AssetsDep, Auditor, EngineDep, require_scope
from api.models import KpiReportPublic
from kpi.engine import ALL_KPI_KEYS as KPI_KEYS
from kpi.report import KpiReport

router = APIRouter(prefix="/v1", tags=["kpi"])

DEFAULT_WINDOW = timedelta(hours=1)
MAX_WINDOW = timedelta(days=366)  # a site's year in one call
MAX_HOURLY_WINDOW = timedelta(days=93)


def _invalid(field: str, message: str, value: Any) -> RequestValidationError:
    # Same shape as FastAPI's own 422s, so a client handles every validation error alike.
    return RequestValidationError([{"type": "value_error", "loc": ("query", field), "msg": message, "input": value}])


@router.get(
    "/kpi",
    response_model=KpiReportPublic,
    responses={403: {"description": "the scope is outside the key's site"}, 404: {"description": "unknown scope"}},
)
async def kpi_report(
    engine: EngineDep,
    assets: AssetsDep,
    caller: Auditor,
    scope: Annotated[str, Query(description="the park, a site, workshop, line or equipment id within the key's scope")],
    start: Annotated[AwareDatetime | None, Query(description="ISO-8601 with timezone; default end - 1 h")] = None,
    end: Annotated[AwareDatetime | None, Query(description="ISO-8601 with timezone; default now")] = None,
    kpis: Annotated[
        str | None, Query(description="comma-separated KPI keys (e.g. oee,availability); default all", max_length=1000)
    ] = None,
    group_by: Annotated[
        Literal["hour", "shift", "day", "week", "month"] | None,
        Query(description="also report each hour, shift, day, week or month of the window (each site's local time)"),
    ] = None,
    source: Annotated[
        Literal["auto", "raw"],
        Query(description="auto: rollups for settled hours, raw series for the rest; raw: raw series only"),
    ] = "auto",
) -> KpiReport:
    require_scope(caller, assets, scope)
    end = end or datetime.now(UTC)
    start = start or end - DEFAULT_WINDOW
    if end <= start:
        raise _invalid("end", f"end ({end.isoformat()}) must be after start ({start.isoformat()})", end.isoformat())
    if end - start > MAX_WINDOW:
        raise _invalid("start", f"the window may span at most {MAX_WINDOW.days} days", start.isoformat())
    chosen = [k.strip() for k in kpis.split(",") if k.strip()] if kpis is not None else None
    if chosen is not None:
        unknown = [k for k in chosen if k not in KPI_KEYS]
        if unknown or not chosen:
            known = ", ".join(sorted(KPI_KEYS))
            raise _invalid("kpis", f"unknown KPI {', '.join(unknown) or '(none given)'}; known: {known}", kpis)
    if group_by in ("hour", "shift") and end - start > MAX_HOURLY_WINDOW:
        raise _invalid("group_by", f"group_by={group_by} covers at most {MAX_HOURLY_WINDOW.days} days", group_by)
    return await engine.report(
        scope,
        start.astimezone(UTC),
        end.astimezone(UTC),
        group_by=group_by,
        kpis=chosen,
        use_rollups=source == "auto",
    )
