"""Response models of the API, named as a family (``…Public``) so the OpenAPI schema reads as one."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from core.assets import Site
from kpi.report import KpiReport


class StoreHealthPublic(BaseModel):
    backend: str
    ok: bool


class HealthPublic(BaseModel):
    status: Literal["ok", "unavailable"]
    store: StoreHealthPublic


class AssetTreePublic(BaseModel):
    """The factory as an ISA-95 tree: site -> workshops -> lines -> equipment."""

    model_config = ConfigDict(frozen=True)

    site: Site


class KpiReportPublic(KpiReport):
    """KPIs of one scope and window, each with its base quantities, coverage and evidence."""
