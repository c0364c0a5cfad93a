"""Response models of the API, named as a family (``…Public``) so the OpenAPI schema reads as one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from api.keys import ApiKey, Role
from core.assets import Park
from core.business import INPUT_UNIT, InputEntry, InputKind
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


class InputEntryPublic(InputEntry):
    """One version of one business input, with the unit of its value (fixed per kind)."""

    unit: str

    @classmethod
    def of(cls, entry: InputEntry) -> InputEntryPublic:
        return cls(**entry.model_dump(), unit=INPUT_UNIT[entry.kind])


class InputListPublic(BaseModel):
    """The latest version of each entry matching the filters, by period."""

    entries: list[InputEntryPublic]
    count: int
    limit: int


class InputHistoryPublic(BaseModel):
    """Every version of one entry, oldest first: who entered or corrected what, and when."""

    entry_id: str
    versions: list[InputEntryPublic]


class InputImportPublic(BaseModel):
    """A CSV file stored whole: one new entry (version 1) per row, in file order."""

    imported: int
    entries: list[InputEntryPublic]


IsoDate = Annotated[
    str, Field(max_length=32, description="a day, YYYY-MM-DD (the site's local date)", examples=["2026-01-01"])
]
InputValue = Annotated[
    StrictFloat | StrictInt | None,
    Field(description="in the kind's unit (see docs/inputs.md); a dev_project may leave it out: its length in days"),
]


class InputCreate(BaseModel):
    """A new business input for one site and one period [period_start, period_end)."""

    model_config = ConfigDict(extra="forbid")

    site: str = Field(description="a site id of the asset model", examples=["cq-demo"])
    kind: InputKind
    period_start: IsoDate
    period_end: IsoDate = Field(description="the first day after the period, YYYY-MM-DD", examples=["2026-02-01"])
    value: InputValue = None
    note: str = Field(default="", description="where the figure comes from (up to 1000 characters)")


class InputCorrection(BaseModel):
    """A correction: the fields given replace the latest version's; the others stay as they are."""

    model_config = ConfigDict(extra="forbid")

    period_start: IsoDate | None = None
    period_end: IsoDate | None = None
    value: InputValue = None
    note: str | None = None
    based_on_version: StrictInt | None = Field(
        default=None, ge=1, description="refuse (409) unless this is still the latest version"
    )
