"""Response models of the API, named as a family (``…Public``) so the OpenAPI schema reads as one."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from core.assets import Park
from kpi.report import KpiReport


class StoreHealthPublic(BaseModel):
    backend: str
    ok: bool


class HealthPublic(BaseModel):
    status: Literal["ok", "unavailable"]
    store: StoreHealthPublic


class AssetTreePublic(BaseModel):
    """The park as an ISA-95 tree: park -> sites -> workshops -> lines -> equipment."""

    model_config = ConfigDict(frozen=True)

    park: Park
    digest: str  # SHA-256 of the asset model (core.assets.AssetModel.digest), as reports record it


class KpiReportPublic(KpiReport):
    """KPIs of one scope and window, each with its base quantities, coverage and evidence."""
