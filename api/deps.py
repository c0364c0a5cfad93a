"""Dependencies as ``Annotated`` aliases, so route signatures read as sentences.

Authentication: an API key in ``X-API-Key`` or ``Authorization: Bearer <key>``. Keys are compared
with ``hmac.compare_digest`` against every configured key, so the time taken does not tell a caller
how much of a guess was right or which key it was close to.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.context import AppContext, Role
from core.assets import AssetModel
from core.store import Store
from kpi.engine import KpiEngine

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="factory"'}


def get_context(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.context)


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_store(context: ContextDep) -> Store:
    return context.store


def get_assets(context: ContextDep) -> AssetModel:
    return context.assets


def get_engine(context: ContextDep) -> KpiEngine:
    return context.engine


StoreDep = Annotated[Store, Depends(get_store)]
AssetsDep = Annotated[AssetModel, Depends(get_assets)]
EngineDep = Annotated[KpiEngine, Depends(get_engine)]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as far as the API knows: the role of the key they presented."""

    role: Role


def _role_of(presented: str, keys: dict[str, Role]) -> Role | None:
    found: Role | None = None
    wanted = presented.encode()
    for key, role in keys.items():
        # No early exit: every key is compared, whatever matched.
        if hmac.compare_digest(wanted, key.encode()):
            found = role
    return found


def authenticate(
    context: ContextDep,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Caller:
    presented = api_key or (bearer.credentials if bearer else None)
    if not presented:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send it in the X-API-Key header or as Authorization: Bearer <key>",
            headers=_CHALLENGE,
        )
    role = _role_of(presented, context.api_keys)
    if role is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key", headers=_CHALLENGE)
    return Caller(role)


CallerDep = Annotated[Caller, Depends(authenticate)]


class RequireRole:
    """A dependency that lets a caller through if their role is at least ``minimum``."""

    def __init__(self, minimum: Role):
        self.minimum = minimum

    def __call__(self, caller: CallerDep) -> Caller:
        if caller.role.rank < self.minimum.rank:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {self.minimum} role or above")
        return caller


Viewer = Annotated[Caller, Depends(RequireRole(Role.VIEWER))]
