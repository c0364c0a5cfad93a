"""The FastAPI application: built by ``create_app`` from settings, a store, an asset model and a key store.

The caller owns the store (opens and closes it); the app only uses it. Every error is answered as
RFC 9457 problem+json (``api.problems``): store failures become 503 (unreachable, retry later) or
502 (the store refused or answered nonsense), with the details in the log rather than in the
response. ``/docs`` is served from the local Swagger UI package, so it works without internet.
"""

from __future__ import annotations

import logging
from pathlib import Path

import swagger_ui
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api import web
from api.context import AppContext
from api.keys import KeyStore
from api.problems import install_problem_handlers
from api.routes import assets as asset_routes
from api.routes import health as health_routes
from api.routes import inputs as input_routes
from api.routes import keys as key_routes
from api.routes import kpi as kpi_routes
from api.routes import reports as report_routes
from api.throttle import FailureThrottle
from core.assets import AssetModel
from core.settings import Settings
from core.store import Store
from core.stores.inputs import InputStore
from kpi.engine import KpiEngine

log = logging.getLogger(__name__)

DOCS_ASSETS = "/docs-assets"
# Swagger UI 5 (renders OpenAPI 3.1), as the swagger-ui-py package ships it; only its static files are used.
SWAGGER_UI_FILES = Path(swagger_ui.__file__).parent / "static"


def create_app(
    settings: Settings,
    store: Store,
    assets: AssetModel,
    keys: KeyStore | None = None,
    *,
    inputs: InputStore | None = None,
) -> FastAPI:
    """``keys``: the key store; default the one at settings ``api.keys_path``.

    ``inputs``: the business-input store (default: the one at settings ``inputs.path``, opened on first use).
    """
    app = FastAPI(
        title="Smart-factory platform API",
        version="1",
        description=(
            "Asset tree and ISO 22400 KPIs with their evidence. Authenticate with an API key (`factory keys "
            "create`) in the X-API-Key header or as a bearer token. Errors are RFC 9457 problem+json."
        ),
        docs_url=None,
        redoc_url=None,
    )
    api = settings.api
    app.state.context = AppContext(
        store=store,
        assets=assets,
        engine=KpiEngine.from_settings(store, assets, settings.kpi),
        keys=keys if keys is not None else KeyStore(api.keys_path),
        throttle=FailureThrottle(api.throttle_failures, api.throttle_window_s, api.throttle_clients),
        inputs=inputs if inputs is not None else InputStore.for_assets(settings.inputs.path, assets),
        input_limits=settings.inputs,
    )
    for router in (
        health_routes.router,
        asset_routes.router,
        kpi_routes.router,
        key_routes.router,
        report_routes.router,
    ):
        app.include_router(router)
    input_routes.register(app)
    install_problem_handlers(app)
    _serve_docs_locally(app)
    web.install(app, settings)
    return app


def _serve_docs_locally(app: FastAPI) -> None:
    """Swagger UI from the installed package's files: a factory network often has no route to a CDN."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_UI_FILES), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            # Swagger UI's default asks validator.swagger.io for a badge: a request off the factory network.
            swagger_ui_parameters={"validatorUrl": None},
        )
