"""The FastAPI application: built by ``create_app`` from settings, a store, an asset model and API keys.

The caller owns the store (opens and closes it); the app only uses it. Store failures become
503 (unreachable, retry later) or 502 (the store refused or answered nonsense), with the details
in the log rather than in the response.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from api.context import AppContext, Role
from api.routes import assets as asset_routes
from api.routes import health as health_routes
from api.routes import inputs as input_routes
from api.routes import kpi as kpi_routes
from core.assets import AssetModel
from core.errors import StoreError, StoreUnavailable
from core.settings import Settings
from core.store import Store
from core.stores.inputs import InputStore
from kpi.engine import KpiEngine

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    store: Store,
    assets: AssetModel,
    api_keys: dict[str, str],
    *,
    inputs: InputStore | None = None,
) -> FastAPI:
    """``api_keys`` maps each key to its role (viewer, auditor, admin); see core.settings.parse_api_keys.

    ``inputs``: the business-input store (default: the one at settings ``inputs.path``, opened on first use).
    """
    try:
        roles = {key: Role(role) for key, role in api_keys.items()}
    except ValueError as exc:
        raise ValueError(f"unknown API key role ({exc}); roles are {', '.join(Role)}") from None
    app = FastAPI(
        title="Smart-factory platform API",
        version="1",
        description="Asset tree and ISO 22400 KPIs with their evidence. Authenticate with X-API-Key.",
    )
    app.state.context = AppContext(
        store=store,
        assets=assets,
        engine=KpiEngine.from_settings(store, assets, settings.kpi),
        api_keys=roles,
        inputs=inputs if inputs is not None else InputStore.for_assets(settings.inputs.path, assets),
        input_limits=settings.inputs,
    )
    for router in (health_routes.router, asset_routes.router, kpi_routes.router):
        app.include_router(router)
    input_routes.register(app)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> JSONResponse:
        unavailable = isinstance(exc, StoreUnavailable)
        log.warning("%s %s: store error: %s", request.method, request.url.path, exc)
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE if unavailable else status.HTTP_502_BAD_GATEWAY,
            content={
                "detail": "the time-series store is unavailable" if unavailable else "the store refused the query"
            },
        )

    return app
