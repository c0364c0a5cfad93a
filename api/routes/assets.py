"""``GET /v1/assets``: the asset tree (park -> sites -> workshops -> lines -> equipment)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AssetsDep, Viewer
from api.models import AssetTreePublic

router = APIRouter(prefix="/v1", tags=["assets"])


@router.get("/assets", response_model=AssetTreePublic)
async def asset_tree(assets: AssetsDep, _: Viewer) -> AssetTreePublic:
    return AssetTreePublic(park=assets.park, digest=assets.digest())
