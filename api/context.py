"""What the routes share: the store, the asset model, the KPI engine, the keys, the throttle, the business inputs."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.keys import KeyStore
from api.throttle import FailureThrottle
from core.assets import AssetModel
from core.settings import InputsSettings
from core.store import Store
from core.stores.inputs import InputStore
from kpi.engine import KpiEngine


@dataclass(slots=True)
class AppContext:
    store: Store
    assets: AssetModel
    engine: KpiEngine
    keys: KeyStore
    throttle: FailureThrottle
    inputs: InputStore
    store_ok: bool | None = field(default=None)  # last health seen, so a change is logged once
    input_limits: InputsSettings = field(default_factory=InputsSettings)  # CSV import limits
