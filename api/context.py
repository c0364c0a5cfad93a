"""What the routes share: the store, the asset model, the KPI engine, the keys, the throttle, the business inputs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from api.keys import KeyStore
from api.throttle import FailureThrottle
from core.assets import AssetModel
from core.once import Outage
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
    # The store's health as /healthz last saw it, so that a change is logged once (nothing known at start).
    store_outage: Outage = field(default_factory=lambda: Outage(logging.getLogger("api.routes.health"), known=False))
    input_limits: InputsSettings = field(default_factory=InputsSettings)  # CSV import limits
