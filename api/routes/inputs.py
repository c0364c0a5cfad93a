"""``/v1/inputs``: business inputs (value added, costs, headcount, projects ...), versioned.

Reading needs the auditor role, entering and correcting the manager role; a key scoped to one site
sees and enters that site's inputs only: its list holds its own site, and another site's entry, a
filter or a CSV row naming another site is refused (403, ``out-of-scope``). Nothing is ever
overwritten: a correction and a withdrawal are new versions, and ``/history`` shows them all with
who made them and when.

Refusals are RFC 9457 (formerly 7807) problem documents (``application/problem+json``) listing each problem with
its field (and line, for a CSV file) and the reason.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.types import Message

from api.deps import Auditor, ContextDep, Manager
from api.models import (
    InputCorrection,
    InputCreate,
    InputEntryPublic,
    InputHistoryPublic,
    InputImportPublic,
    InputListPublic,
)
from core.business import InputEntry, InputKind
from core.inputs import (
    FieldProblem,
    InputConflict,
    InputError,
    InputFileTooLarge,
    InputNotFound,
    InputOutOfScope,
    InputRejected,
    parse_date,
)
from core.inputs_csv import CSV_HEADER, import_inputs_csv
from core.stores.inputs import InputStore

router = APIRouter(prefix="/v1", tags=["inputs"])

MAX_LIST = 5000
MULTIPART_OVERHEAD = 64 * 1024  # the form's boundaries and headers around the file
CSV_TYPES = ("text/csv", "text/plain", "application/csv", "application/vnd.ms-excel", "application/octet-stream")

EntryId = Annotated[str, Path(max_length=64, description="an entry id, e.g. in-3f2a9c1b7d4e5f60")]

_PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "another site's entry, for a key of one site"},
    404: {"description": "no such entry"},
    409: {"description": "the entry was withdrawn, or corrected since the version given"},
    422: {"description": "refused: each problem with its field (and line) and reason"},
}


# The shape of api.problems (the access branch): RFC 9457 with a tag: type, the request path as instance,
# and for a refusal one entry per problem in ``errors`` ({loc, msg, type} like FastAPI's own, plus the
# field, the reason and, in a file, the line).
_PROBLEM_TYPE = "tag:smart-factory-platform,2026:problem:"


def _problem(request: Request, status_code: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": _PROBLEM_TYPE + slug,
        "title": title,
        "status": status_code,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status_code, media_type="application/problem+json")


def _where(request: Request) -> str:
    if request.url.path.endswith("/csv"):
        return "file"
    return "query" if request.method in ("GET", "DELETE") else "body"


def _problem_list(problems: list[FieldProblem], where: str) -> list[dict[str, Any]]:
    def loc(p: FieldProblem) -> list[str | int]:
        if p.line is not None:
            return [where, p.line, p.field]
        return ["path" if p.field == "entry_id" else where, p.field]

    return [
        {
            "loc": loc(p),
            "msg": str(p),
            "type": "value_error",
            "field": p.field,
            "reason": p.reason,
        }
        | ({"line": p.line} if p.line is not None else {})
        for p in problems
    ]


def register(app: FastAPI) -> None:
    """Include the routes and turn the input errors into problem documents."""
    app.include_router(router)

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, InputOutOfScope):
            errors = _problem_list(exc.problems, _where(request))
            detail = str(exc) + ("" if request.method == "GET" else "; nothing was stored")
            return _problem(request, 403, "out-of-scope", "Outside the key's scope", detail, errors=errors)
        if isinstance(exc, InputFileTooLarge):
            errors = _problem_list(exc.problems, "file")
            return _problem(request, 413, "file-too-large", "File too large", str(exc), errors=errors)
        if isinstance(exc, InputRejected):
            shown = len(exc.problems)
            detail = (
                f"{exc.what} refused, nothing was stored: {exc.total} problem(s)"
                + (f", the first {shown} listed" if shown < exc.total else "")
                + (f": {exc.problems[0]}" if exc.problems else "")
            )
            errors = _problem_list(exc.problems, _where(request))
            title = f"{exc.what[:1].upper()}{exc.what[1:]} refused"
            return _problem(request, 422, "input-refused", title, detail, errors=errors, error_count=exc.total)
        if isinstance(exc, InputNotFound):
            return _problem(request, 404, "input-not-found", "Business input not found", str(exc))
        if isinstance(exc, InputConflict):
            return _problem(request, 409, "input-conflict", "Business input changed or withdrawn", str(exc))
        return _problem(request, 400, "input-refused", "Business input refused", str(exc))


def _day(text: str | None, field: str) -> date | None:
    if text is None:
        return None
    parsed = parse_date(text, field)
    if isinstance(parsed, FieldProblem):
        raise InputRejected([parsed])
    return parsed


def _required_day(text: str, field: str) -> date:
    day = _day(text, field)
    assert day is not None
    return day


def _outside(field: str, reason: str) -> InputOutOfScope:
    return InputOutOfScope([FieldProblem(field, reason)], what="request")


def _may_enter(caller: Manager, site: str) -> None:
    if not caller.may_see(site):
        raise _outside(
            "site", f"API key {caller.key_id} may enter inputs for site {caller.site} only, not {site[:64]!r}"
        )


def _visible(store: InputStore, caller: Auditor, entry_id: str) -> InputEntry:
    latest = store.latest(entry_id)
    if not caller.may_see(latest.site):
        reason = (
            f"entry {entry_id} is of site {latest.site!r}; API key {caller.key_id} may see site {caller.site!r} only"
        )
        raise _outside("entry_id", reason)
    return latest


@router.get("/inputs", response_model=InputListPublic, responses={403: {"description": "another site's inputs"}})
def list_inputs(
    context: ContextDep,
    caller: Auditor,
    site: Annotated[str | None, Query(max_length=64, description="only this site")] = None,
    kind: Annotated[InputKind | None, Query(description="only this kind")] = None,
    start: Annotated[
        str | None, Query(alias="from", max_length=32, description="periods ending after this day (YYYY-MM-DD)")
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", max_length=32, description="periods starting before this day (YYYY-MM-DD)")
    ] = None,
    withdrawn: Annotated[bool, Query(description="also list withdrawn entries (their withdrawal version)")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 1000,
) -> InputListPublic:
    """The latest version of each business input, by period; a site's key sees its own site only."""
    if site is not None and not caller.may_see(site):
        raise _outside("site", f"API key {caller.key_id} may see site {caller.site!r} only, not {site[:64]!r}")
    entries = context.inputs.list(
        site=site if site is not None else caller.site,
        kind=kind,
        start=_day(start, "from"),
        end=_day(end, "to"),
        withdrawn=withdrawn,
        limit=limit,
    )
    return InputListPublic(entries=[InputEntryPublic.of(e) for e in entries], count=len(entries), limit=limit)


@router.get("/inputs/{entry_id}", response_model=InputEntryPublic, responses=_PROBLEM_RESPONSES)
def get_input(context: ContextDep, caller: Auditor, entry_id: EntryId) -> InputEntryPublic:
    """The latest version of one entry (a withdrawn entry's is its withdrawal, ``deleted`` true)."""
    return InputEntryPublic.of(_visible(context.inputs, caller, entry_id))


@router.get("/inputs/{entry_id}/history", response_model=InputHistoryPublic, responses=_PROBLEM_RESPONSES)
def input_history(context: ContextDep, caller: Auditor, entry_id: EntryId) -> InputHistoryPublic:
    """Every version of one entry, oldest first."""
    _visible(context.inputs, caller, entry_id)
    versions = context.inputs.history(entry_id)
    return InputHistoryPublic(entry_id=entry_id, versions=[InputEntryPublic.of(v) for v in versions])


@router.post("/inputs", status_code=201, response_model=InputEntryPublic, responses=_PROBLEM_RESPONSES)
def create_input(context: ContextDep, caller: Manager, body: InputCreate) -> InputEntryPublic:
    """Enter a new business input (version 1). Entered by the calling key."""
    _may_enter(caller, body.site)
    entry = context.inputs.add(
        body.site,
        body.kind,
        _required_day(body.period_start, "period_start"),
        _required_day(body.period_end, "period_end"),
        body.value,
        body.note,
        entered_by=caller.key_id,
    )
    return InputEntryPublic.of(entry)


@router.post(
    "/inputs/{entry_id}/versions", status_code=201, response_model=InputEntryPublic, responses=_PROBLEM_RESPONSES
)
def correct_input(context: ContextDep, caller: Manager, entry_id: EntryId, body: InputCorrection) -> InputEntryPublic:
    """Correct an entry: a new version with the fields given changed. The earlier versions stay."""
    _visible(context.inputs, caller, entry_id)
    entry = context.inputs.correct(
        entry_id,
        entered_by=caller.key_id,
        period_start=_day(body.period_start, "period_start"),
        period_end=_day(body.period_end, "period_end"),
        value=body.value,
        note=body.note,
        expected_version=body.based_on_version,
    )
    return InputEntryPublic.of(entry)


@router.delete("/inputs/{entry_id}", response_model=InputEntryPublic, responses=_PROBLEM_RESPONSES)
def withdraw_input(
    context: ContextDep,
    caller: Manager,
    entry_id: EntryId,
    reason: Annotated[str, Query(max_length=2000, description="why the entry is withdrawn (kept in its history)")],
) -> InputEntryPublic:
    """Withdraw an entry: a new version marked deleted, with the reason. Its history stays readable."""
    _visible(context.inputs, caller, entry_id)
    return InputEntryPublic.of(context.inputs.withdraw(entry_id, entered_by=caller.key_id, reason=reason))


async def _body(request: Request, cap: int) -> bytes:
    """The request body, refused (413) as soon as it is larger than ``cap`` bytes."""
    problem = FieldProblem("file", f"larger than {cap:,} bytes (split the file)")
    too_large = InputFileTooLarge([problem], what="CSV file")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise too_large
    return bytes(body)


async def _uploaded_file(request: Request, body: bytes) -> bytes:
    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=1, max_fields=10)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InputRejected([FieldProblem("file", "the form needs the CSV file in a field named 'file'")])
        return await upload.read()
    finally:
        await form.close()


@router.post(
    "/inputs/csv",
    status_code=201,
    response_model=InputImportPublic,
    responses={
        **_PROBLEM_RESPONSES,
        413: {"description": "the file is larger than the limit (settings inputs.csv_max_bytes)"},
        415: {"description": "neither text/csv nor a multipart form"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": f"UTF-8 CSV with the header `{CSV_HEADER}` (see docs/inputs.md)",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            },
        }
    },
)
async def import_csv(request: Request, context: ContextDep, caller: Manager) -> InputImportPublic:
    """Import a CSV file of business inputs: every row stored, or none and every bad row listed with its line."""
    limits = context.input_limits
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        data = await _uploaded_file(request, await _body(request, limits.csv_max_bytes + MULTIPART_OVERHEAD))
    elif content_type in CSV_TYPES:
        data = await _body(request, limits.csv_max_bytes)
    else:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send the file as text/csv or as a multipart form field 'file', not {content_type or 'no content type'}",
        )
    entries = await asyncio.to_thread(
        import_inputs_csv,
        context.inputs,
        data,
        entered_by=caller.key_id,
        site_scope=caller.site,
        max_bytes=limits.csv_max_bytes,
        max_rows=limits.csv_max_rows,
    )
    return InputImportPublic(imported=len(entries), entries=[InputEntryPublic.of(e) for e in entries])
