"""``GET /healthz``: is the API up and can it reach its store? No authentication, no internals."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status

from api.deps import ContextDep
from api.models import HealthPublic, StoreHealthPublic

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "the store cannot be reached"}},
)
async def healthz(context: ContextDep, response: Response) -> HealthPublic:
    health = await context.store.health()
    # Logged on a change only: load balancers poll this every few seconds.
    if health.ok:
        context.store_outage.back("store %s is healthy: %s", health.backend, health.detail)
    else:
        context.store_outage.lost("store %s is unhealthy: %s", health.backend, health.detail)
    if not health.ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    # The detail (paths, URLs) stays in the log: this endpoint answers anyone.
    return HealthPublic(
        status="ok" if health.ok else "unavailable",
        store=StoreHealthPublic(backend=health.backend, ok=health.ok),
    )
