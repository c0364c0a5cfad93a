"""Every error the API answers is an RFC 9457 (formerly 7807) problem: ``application/problem+json``.

``{"type", "title", "status", "detail", "instance"}``: ``type`` names the kind of problem (a ``tag:``
URI, stable, for programs to branch on; ``about:blank`` where the HTTP status says it all),
``title`` is its short human name, ``detail`` says what went wrong with *this* request and what to
do about it, ``instance`` is the request's path. Validation problems (422) add ``errors``: one entry
per bad field, ``{"loc": ["query", "end"], "msg": ..., "type": ...}``. 429 adds ``retry_after_s``.

Routes raise ``ApiProblem`` (or FastAPI's ``HTTPException``); ``install_problem_handlers`` turns
those, validation errors, store errors and anything unexpected into problems, and documents the
shape in the OpenAPI schema.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.keys import KeyStoreUnavailable
from core.errors import StoreError, StoreUnavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "tag:smart-factory-platform,2026:problem:"


class ProblemPublic(BaseModel):
    """An error, as RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="what kind of problem (a URI to branch on); about:blank: see status")
    title: str = Field(description="short name of the kind of problem")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong with this request, and what to do about it")
    instance: str = Field(description="the path of the request that failed")


class FieldErrorPublic(BaseModel):
    loc: list[str | int] = Field(description='where: ["query", "end"], ["body", "name"], ...')
    msg: str
    type: str


class ValidationProblemPublic(ProblemPublic):
    """A request that does not validate: one entry in ``errors`` per bad field."""

    errors: list[FieldErrorPublic]


def problem_type(slug: str) -> str:
    return TYPE_PREFIX + slug


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type: str = "about:blank",
    instance: str = "",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response; ``extra`` are extension members (e.g. ``errors``, ``retry_after_s``)."""
    body = {"type": type, "title": title, "status": status, "detail": detail, "instance": instance, **extra}
    return JSONResponse(
        jsonable_encoder(body), status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


class ApiProblem(StarletteHTTPException):
    """Raise this from a route or dependency to answer with a problem of a named type."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        slug: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(status, detail, headers=dict(headers) if headers else None)
        self.title = title
        self.type = problem_type(slug) if slug else "about:blank"
        self.extra = extra


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _where(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "path", "header", "cookie"):
        return f"{parts[0]} parameter {'.'.join(parts[1:])!r}" if len(parts) > 1 else parts[0]
    if parts and parts[0] == "body":
        return "request body" + (f" field {'.'.join(parts[1:])!r}" if len(parts) > 1 else "")
    return ".".join(parts) or "request"


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json and say so in its OpenAPI schema."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, ApiProblem):
            return problem(
                exc.status_code,
                exc.title,
                str(exc.detail),
                type=exc.type,
                instance=request.url.path,
                headers=exc.headers,
                **exc.extra,
            )
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == status.HTTP_404_NOT_FOUND and detail == "Not Found":
            detail = f"nothing at {request.url.path}; the API's paths are listed at /docs"
        elif exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED and detail == "Method Not Allowed":
            detail = f"{request.method} is not allowed on {request.url.path}; see /docs for its methods"
        return problem(
            exc.status_code, _phrase(exc.status_code), detail, instance=request.url.path, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in errors) or "the request does not validate"
        return problem(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "Invalid request",
            detail,
            type=problem_type("invalid-request"),
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        log.warning("%s %s: store error: %s", request.method, request.url.path, exc)
        if isinstance(exc, StoreUnavailable):
            return problem(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "Store unavailable",
                "the time-series store cannot be reached; try again shortly, and if it persists ask the "
                "operator to check the store (GET /healthz shows its state)",
                type=problem_type("store-unavailable"),
                instance=request.url.path,
                headers={"Retry-After": "30"},
            )
        return problem(
            status.HTTP_502_BAD_GATEWAY,
            "Store error",
            "the time-series store refused the query or answered something unreadable; the operator finds "
            "the reason in the API's log",
            type=problem_type("store-error"),
            instance=request.url.path,
        )

    @app.exception_handler(KeyStoreUnavailable)
    async def _keys(request: Request, exc: KeyStoreUnavailable) -> JSONResponse:
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return problem(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Key store unavailable",
            "the API cannot read its key store, so it cannot check keys; ask the operator (the reason is in "
            "the API's log)",
            type=problem_type("key-store-unavailable"),
            instance=request.url.path,
            headers={"Retry-After": "30"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after this answer, so the server logs the traceback; the caller gets no internals.
        return problem(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            "Internal error",
            "the API failed on this request through no fault of the request; the operator finds the traceback "
            "in the API's log",
            type=problem_type("internal-error"),
            instance=request.url.path,
        )

    app.openapi = lambda: _openapi_with_problems(app)  # type: ignore[method-assign]


PROBLEM_STATUSES = {
    "400": "Bad request",
    "401": "No key, or a key that is unknown, revoked or malformed",
    "403": "The key's role or site does not allow this",
    "404": "Not found (e.g. an unknown scope)",
    "422": "Invalid request",
    "429": "Too many failed keys from this address; wait Retry-After seconds",
    "500": "Internal error",
    "502": "The store refused the query",
    "503": "The store or the key store cannot be reached",
}


def _openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema (cached by FastAPI) with every error response documented as problem+json (idempotent)."""
    schema = FastAPI.openapi(app)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ProblemPublic, ValidationProblemPublic):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    problem_ref = {"$ref": "#/components/schemas/ProblemPublic"}
    validation_ref = {"$ref": "#/components/schemas/ValidationProblemPublic"}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            secured = bool(operation.get("security"))
            wanted = {"422", "500"} | ({"401", "403", "429", "503"} if secured else set())
            if "parameters" not in operation and "requestBody" not in operation:
                wanted.discard("422")
            for code in sorted(wanted | {c for c in responses if c[0] in "45"}):
                entry = responses.setdefault(code, {})
                entry.setdefault("description", PROBLEM_STATUSES.get(code, _phrase(int(code))))
                if code == "503" and "application/json" in entry.get("content", {}):
                    continue  # a route's own 503 body (the health report)
                entry["content"] = {PROBLEM_JSON: {"schema": validation_ref if code == "422" else problem_ref}}
    return schema
