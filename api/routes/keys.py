"""``/v1/keys``: admins list, create and revoke API keys (also on the command line: ``factory keys``).

An admin of one site sees and manages the keys of that site only; an admin of the park, every key.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Path, status

from api.deps import Admin, AssetsDep, Caller, KeysDep
from api.keys import ApiKey, UnknownKey, site_for_scope
from api.models import ApiKeyCreate, ApiKeyCreatedPublic, ApiKeyPublic
from api.problems import ApiProblem

router = APIRouter(prefix="/v1", tags=["keys"])

KeyId = Path(pattern=r"^[0-9a-f]{12}$", description="the key's id (12 hex digits), as `factory keys list` shows it")


def _outside(caller: Caller, what: str) -> ApiProblem:
    return ApiProblem(
        status.HTTP_403_FORBIDDEN,
        "Outside the key's scope",
        f"{what}; API key {caller.key_id} may manage keys of site {caller.site!r} only. Ask an admin of the park",
        slug="out-of-scope",
    )


@router.get("/keys", response_model=list[ApiKeyPublic])
async def list_keys(keys: KeysDep, caller: Admin) -> list[ApiKeyPublic]:
    found = await asyncio.to_thread(keys.list_keys)
    return [ApiKeyPublic.of(key) for key in found if caller.may_see(key.site)]


@router.post("/keys", response_model=ApiKeyCreatedPublic, status_code=status.HTTP_201_CREATED)
async def create_key(request: ApiKeyCreate, keys: KeysDep, assets: AssetsDep, caller: Admin) -> ApiKeyCreatedPublic:
    try:
        site = site_for_scope(assets, request.scope)
    except ValueError as exc:
        raise ApiProblem(status.HTTP_404_NOT_FOUND, "Unknown scope", str(exc), slug="unknown-scope") from None
    if not caller.may_see(site):
        raise _outside(caller, f"a key for {request.scope!r} would see beyond your site")
    new = await asyncio.to_thread(keys.create, request.name, request.role, site, f"api key {caller.key_id}")
    return ApiKeyCreatedPublic(key=ApiKeyPublic.of(new.key), secret=new.secret)


@router.delete("/keys/{key_id}", response_model=ApiKeyPublic)
async def revoke_key(keys: KeysDep, caller: Admin, key_id: str = KeyId) -> ApiKeyPublic:
    try:
        key: ApiKey = await asyncio.to_thread(keys.get, key_id)
    except UnknownKey:
        raise ApiProblem(
            status.HTTP_404_NOT_FOUND, "Unknown key", f"no API key has the id {key_id!r}; GET /v1/keys lists them"
        ) from None
    if not caller.may_see(key.site):
        raise _outside(caller, f"key {key_id} is for {key.scope!r}")
    return ApiKeyPublic.of(await asyncio.to_thread(keys.revoke, key_id))
