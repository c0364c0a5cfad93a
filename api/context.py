"""What the routes share: the store, the asset model, the KPI engine, the API keys and the business inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from core.assets import AssetModel
from core.settings import InputsSettings
from core.store import Store
from core.stores.inputs import InputStore
from kpi.engine import KpiEngine


class Role(StrEnum):
    VIEWER = "viewer"
    AUDITOR = "auditor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.VIEWER: 0, Role.AUDITOR: 1, Role.ADMIN: 2}


@dataclass(slots=True)
class AppContext:
    store: Store
    assets: AssetModel
    engine: KpiEngine
    api_keys: dict[str, Role]
    inputs: InputStore
    store_ok: bool | None = field(default=None)  # last health seen, so a change is logged once
    input_limits: InputsSettings = field(default_factory=InputsSettings)  # CSV import limits
