"""Response models of the API, named as a family (``…Public``) so the OpenAPI schema reads as one."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.keys import ApiKey, Role
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


class ApiKeyPublic(BaseModel):
    """An API key as anyone may see it: never its secret."""

    id: str
    name: str
    role: Role
    scope: str = Field(description='a site id, or "park" for the whole park')
    created: datetime
    created_by: str
    revoked_at: datetime | None
    last_used: datetime | None = Field(description="to the minute")

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyPublic:
        return cls(
            id=key.id,
            name=key.name,
            role=key.role,
            scope=key.scope,
            created=key.created,
            created_by=key.created_by,
            revoked_at=key.revoked_at,
            last_used=key.last_used,
        )


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="who or what uses the key")
    role: Role
    scope: str = Field(min_length=1, max_length=64, description='a site id, or "park" for the whole park')


class ApiKeyCreatedPublic(BaseModel):
    """A new key: ``secret`` is shown this once and stored nowhere (only its hash is)."""

    key: ApiKeyPublic
    secret: str
