"""Dependencies as ``Annotated`` aliases, so route signatures read as sentences.

Authentication: an API key in ``X-API-Key`` or ``Authorization: Bearer <key>``. Keys are compared
with ``hmac.compare_digest`` against every configured key, so the time taken does not tell a caller
how much of a guess was right or which key it was close to.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum
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


# TEMP until the access branch lands (replaced at merge): its interface, on today's keys.
# ``Caller(key_id, role, site)`` and the aliases ``Auditor`` < ``Manager`` < ``Admin``. Today's keys
# cover the whole park; viewer and auditor keys are auditors, admin keys are admins, so no existing
# key gains the right to enter business inputs except an admin's.


class AccessRole(StrEnum):
    AUDITOR = "auditor"
    MANAGER = "manager"
    ADMIN = "admin"


_ACCESS_RANK = {AccessRole.AUDITOR: 0, AccessRole.MANAGER: 1, AccessRole.ADMIN: 2}
_TODAYS_ROLE = {Role.VIEWER: AccessRole.AUDITOR, Role.AUDITOR: AccessRole.AUDITOR, Role.ADMIN: AccessRole.ADMIN}


@dataclass(frozen=True, slots=True)
class ScopedCaller:
    key_id: str
    role: AccessRole
    site: str | None = None  # None: the whole park

    def may_see(self, site_id: str | None) -> bool:
        return self.site is None or site_id == self.site


def identify(
    context: ContextDep,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> ScopedCaller:
    caller = authenticate(context, api_key, bearer)
    presented = api_key or (bearer.credentials if bearer else "")
    key_id = "key-" + hashlib.sha256(presented.encode()).hexdigest()[:12]
    return ScopedCaller(key_id, _TODAYS_ROLE[caller.role])


class RequireAccess:
    def __init__(self, minimum: AccessRole):
        self.minimum = minimum

    def __call__(self, caller: Annotated[ScopedCaller, Depends(identify)]) -> ScopedCaller:
        if _ACCESS_RANK[caller.role] < _ACCESS_RANK[self.minimum]:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {self.minimum} role or above")
        return caller


Auditor = Annotated[ScopedCaller, Depends(RequireAccess(AccessRole.AUDITOR))]
Manager = Annotated[ScopedCaller, Depends(RequireAccess(AccessRole.MANAGER))]
Admin = Annotated[ScopedCaller, Depends(RequireAccess(AccessRole.ADMIN))]
