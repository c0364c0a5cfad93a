"""``GET /v1/assets``: the asset tree (park -> sites -> workshops -> lines -> equipment) the key may see."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import AssetsDep, Auditor
from api.models import AssetTreePublic
from api.problems import ApiProblem

router = APIRouter(prefix="/v1", tags=["assets"])


@router.get("/assets", response_model=AssetTreePublic)
async def asset_tree(assets: AssetsDep, caller: Auditor) -> AssetTreePublic:
    visible = [site for site in assets.sites if caller.may_see(site.id)]
    if not visible:
        raise ApiProblem(
            status.HTTP_403_FORBIDDEN,
            "Outside the key's scope",
            f"API key {caller.key_id} is for site {caller.site!r}, which is not in the asset model; "
            "ask an admin for a key of an existing site",
            slug="out-of-scope",
        )
    return AssetTreePublic(park=assets.park.model_copy(update={"sites": visible}), digest=assets.digest())
