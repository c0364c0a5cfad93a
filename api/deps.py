"""Dependencies as ``Annotated`` aliases, so route signatures read as sentences.

Authentication: an API key (see ``api.keys``) in ``X-API-Key``, in ``Authorization: Bearer <key>``,
or in the ``factory_key`` cookie that the web sign-in sets (HttpOnly, SameSite=Strict). Each key has
a role (``Auditor`` < ``Manager`` < ``Admin``; a route asks for the least it needs) and a scope:
one site, or the whole park. ``require_scope`` refuses a scope outside the key's site.

Wrong keys are throttled per client address (``api.throttle``); the key store is read on every
request, so a revocation holds from the next request on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request, Response, Security, status
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.context import AppContext
from api.keys import KeyStore, Role
from api.problems import ApiProblem
from core.assets import AssetModel
from core.store import Store
from kpi.engine import KpiEngine

__all__ = [
    "KEY_COOKIE",
    "Admin",
    "AssetsDep",
    "Auditor",
    "Caller",
    "CallerDep",
    "ContextDep",
    "EngineDep",
    "KeysDep",
    "Manager",
    "RequireRole",
    "Role",
    "StoreDep",
    "authenticate",
    "require_scope",
    "set_key_cookie",
]

KEY_COOKIE = "factory_key"
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key (fk_...)")
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_cookie = APIKeyCookie(name=KEY_COOKIE, auto_error=False, description="API key set by the web sign-in")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="factory"'}
_SEND_KEY = (
    "send it in the X-API-Key header or as Authorization: Bearer <key> (web pages: sign in); "
    "an admin creates keys with `factory keys create`"
)


def get_context(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.context)


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_store(context: ContextDep) -> Store:
    return context.store


def get_assets(context: ContextDep) -> AssetModel:
    return context.assets


def get_engine(context: ContextDep) -> KpiEngine:
    return context.engine


def get_keys(context: ContextDep) -> KeyStore:
    return context.keys


StoreDep = Annotated[Store, Depends(get_store)]
AssetsDep = Annotated[AssetModel, Depends(get_assets)]
EngineDep = Annotated[KpiEngine, Depends(get_engine)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the key they presented, its role and its site (None: the whole park)."""

    key_id: str
    role: Role
    site: str | None

    def may_see(self, site_id: str | None) -> bool:
        """May this caller see ``site_id`` (None: the park as a whole)?"""
        return self.site is None or self.site == site_id


def _unauthorized(title: str, detail: str, slug: str) -> ApiProblem:
    return ApiProblem(status.HTTP_401_UNAUTHORIZED, title, detail, slug=slug, headers=_CHALLENGE)


async def authenticate(
    request: Request,
    context: ContextDep,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    cookie: Annotated[str | None, Security(_cookie)],
) -> Caller:
    presented = api_key or (bearer.credentials if bearer else None) or cookie
    if not presented:
        raise _unauthorized("Missing API key", f"this needs an API key: {_SEND_KEY}", "missing-key")
    client = request.client.host if request.client else "unknown"
    wait = context.throttle.retry_after(client)
    if wait is not None:
        throttle = context.throttle
        raise ApiProblem(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "Too many wrong keys",
            f"{throttle.max_failures} wrong API keys from your address within {throttle.window_s:g} s; "
            f"try again in {wait} s, with a key copied whole",
            slug="throttled",
            headers={"Retry-After": str(wait)},
            retry_after_s=wait,
        )
    key = await asyncio.to_thread(context.keys.verify, presented)
    if key is None:
        context.throttle.record_failure(client)
        raise _unauthorized(
            "Invalid API key",
            "this API key is unknown: check it was copied whole (fk_, then 56 characters), or ask an admin for a "
            "new one (`factory keys create`)",
            "invalid-key",
        )
    if key.revoked_at is not None:
        context.throttle.record_failure(client)
        raise _unauthorized(
            "Revoked API key",
            f"API key {key.id} ({key.name}) was revoked at {key.revoked_at.isoformat()}; ask an admin for a new one",
            "revoked-key",
        )
    return Caller(key_id=key.id, role=key.role, site=key.site)


CallerDep = Annotated[Caller, Depends(authenticate)]


class RequireRole:
    """A dependency that lets a caller through if their key's role is at least ``minimum``."""

    def __init__(self, minimum: Role):
        self.minimum = minimum

    def __call__(self, caller: CallerDep) -> Caller:
        if not caller.role.at_least(self.minimum):
            raise ApiProblem(
                status.HTTP_403_FORBIDDEN,
                "Role too low",
                f"this needs the {self.minimum} role or above; API key {caller.key_id} has the {caller.role} role. "
                f"Ask an admin for a {self.minimum} key",
                slug="role-too-low",
            )
        return caller


Auditor = Annotated[Caller, Depends(RequireRole(Role.AUDITOR))]
Manager = Annotated[Caller, Depends(RequireRole(Role.MANAGER))]
Admin = Annotated[Caller, Depends(RequireRole(Role.ADMIN))]


def require_scope(caller: Caller, assets: AssetModel, scope_id: str) -> None:
    """404 if ``scope_id`` is not in the asset model, 403 if it lies outside the caller's site."""
    if not assets.has_scope(scope_id):
        raise ApiProblem(
            status.HTTP_404_NOT_FOUND,
            "Unknown scope",
            f"unknown scope {scope_id!r}: not a park, site, workshop, line or equipment id; "
            "GET /v1/assets lists the ids your key may see",
            slug="unknown-scope",
        )
    site = assets.site_of(scope_id)
    if not caller.may_see(site):
        where = f"in site {site!r}" if site is not None else "the whole park"
        raise ApiProblem(
            status.HTTP_403_FORBIDDEN,
            "Outside the key's scope",
            f"scope {scope_id!r} is {where}; API key {caller.key_id} may see site {caller.site!r} only. "
            "Ask for a scope in that site, or for a key of the park",
            slug="out-of-scope",
        )


def set_key_cookie(response: Response, key: str, *, secure: bool) -> None:
    """Sign a browser in: the key in an HttpOnly, SameSite=Strict cookie the API accepts like the header."""
    response.set_cookie(KEY_COOKIE, key, httponly=True, samesite="strict", secure=secure, path="/")
