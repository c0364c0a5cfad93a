"""The pages people use: sign in, the overview, the report viewer. Server-rendered, in Chinese or English.

Authentication is the ``factory_key`` cookie the sign-in form sets (HttpOnly, SameSite=Strict, so no
script reads it and no other site's form can send it). Every page answers with a strict
Content-Security-Policy: scripts, styles and images from this server only, nothing from a CDN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from api.deps import KEY_COOKIE, Caller, authenticate, get_context, set_key_cookie
from api.problems import ApiProblem
from api.report_service import ReportError, ReportQuery, ReportService, StoredReport
from api.reporting.view import threshold_text
from api.web import display as fmt
from api.web.i18n import LANGS, Lang, pick_language, t
from api.web.overview import OVERVIEW_KPIS, PERIODS, PeriodError, build_overview, window_of
from kpi.certification_models import CertificationReport

HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)

router = APIRouter(include_in_schema=False)
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True, default_for_string=True)
)


def _service(request: Request) -> ReportService:
    service: ReportService = request.app.state.report_service
    return service


async def _caller_of(request: Request, key: str) -> Caller | ApiProblem:
    """The API's own authentication (key store, revocation, throttling) applied to a key from a page."""
    try:
        return await authenticate(request, get_context(request), None, None, key)
    except ApiProblem as refused:
        return refused


async def page_caller(request: Request) -> Caller | None:
    """Who is signed in (the ``factory_key`` cookie), or None: not signed in, or the key no longer works."""
    key = request.cookies.get(KEY_COOKIE)
    if not key:
        return None
    caller = await _caller_of(request, key)
    return caller if isinstance(caller, Caller) else None


def _lang(request: Request, lang: str | None) -> Lang:
    return pick_language(lang, request.headers.get("accept-language"))


def _switch_url(request: Request, lang: Lang) -> str:
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    query["lang"] = "en" if lang == "zh" else "zh"
    return f"{request.url.path}?{urlencode(query)}"


def render(request: Request, name: str, lang: Lang, status_code: int = 200, **context: Any) -> HTMLResponse:
    def tr(name: str, /, **values: object) -> str:
        return t(name, lang, **values)

    context.setdefault("signed_in", True)
    html = templates.get_template(name).render(
        t=tr, lang=lang, switch_url=_switch_url(request, lang), path=request.url.path, **context
    )
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


def _to_signin(lang: Lang) -> RedirectResponse:
    return RedirectResponse(f"/ui/signin?lang={lang}", status_code=303)


@router.get("/")
async def home(request: Request) -> RedirectResponse:
    lang = _lang(request, request.query_params.get("lang"))
    if await page_caller(request) is None:
        return _to_signin(lang)
    return RedirectResponse(f"/ui/overview?lang={lang}", status_code=303)


@router.get("/ui/signin")
async def signin_form(request: Request, lang: str | None = None) -> HTMLResponse:
    return render(request, "signin.html", _lang(request, lang), error=None, signed_in=False)


@router.post("/ui/signin", response_model=None)
async def signin(
    request: Request, key: Annotated[str, Form(max_length=512)] = "", lang: Annotated[str, Form()] = "en"
) -> Response:
    language = _lang(request, lang)
    key = key.strip()
    if not key:
        return render(request, "signin.html", language, status_code=400, error=t("no_key", language), signed_in=False)
    caller = await _caller_of(request, key)
    if isinstance(caller, ApiProblem):
        if caller.status_code == 429:
            error = t("throttled", language, s=caller.extra.get("retry_after_s", "?"))
        elif caller.type.endswith(":revoked-key"):
            error = t("revoked_key", language)
        else:
            error = t("wrong_key", language)
        return render(request, "signin.html", language, status_code=caller.status_code, error=error, signed_in=False)
    response = RedirectResponse(f"/ui/overview?lang={language}", status_code=303)
    set_key_cookie(response, key, secure=request.url.scheme == "https")
    return response


@router.post("/ui/signout")
async def signout(request: Request, lang: Annotated[str, Form()] = "en") -> RedirectResponse:
    response = _to_signin(_lang(request, lang))
    response.delete_cookie(KEY_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/ui/overview", response_model=None)
async def overview(
    request: Request,
    lang: str | None = None,
    period: str = "24h",
    first_text: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    last_text: Annotated[str | None, Query(alias="to", max_length=10)] = None,
) -> Response:
    language = _lang(request, lang)
    caller = await page_caller(request)
    if caller is None:
        return _to_signin(language)
    context = get_context(request)
    now = datetime.now(UTC)
    # Local days of the key's site; for a key of the park, the park's zone (by default its first site's).
    zone = context.assets.timezone_of(caller.site or context.assets.park.id)
    first = last = None
    try:
        # A form sends empty date fields as "": no date, not a validation error.
        first, last = _day(first_text, "from"), _day(last_text, "to")
        window = window_of(period, first, last, now, zone)
    except PeriodError as exc:
        return render(
            request,
            "overview.html",
            language,
            status_code=422,
            error=str(exc),
            view=None,
            periods=PERIODS,
            period=period,
            first=first,
            last=last,
            kpi_keys=OVERVIEW_KPIS,
        )
    view = await build_overview(context.engine, context.assets, caller, window, now)
    return render(
        request,
        "overview.html",
        language,
        error=None,
        view=view,
        periods=PERIODS,
        period=window.period,
        first=first,
        last=last,
        kpi_keys=OVERVIEW_KPIS,
        zone=zone,
    )


def _day(text: str | None, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{field}: {text!r} is not a date (YYYY-MM-DD)") from None


@dataclass(frozen=True, slots=True)
class ReportSuggestion:
    """What the report form offers first (the demo suggests the periods of its history); local dates [start, end)."""

    scope: str
    baseline: tuple[date, date] | None
    assessment: tuple[date, date]
    scheme: str | None = None


def _report_form_defaults(request: Request, caller: Caller) -> dict[str, Any]:
    suggestion: ReportSuggestion | None = getattr(request.app.state, "report_suggestion", None)
    assets = get_context(request).assets
    if (
        suggestion is not None
        and assets.has_scope(suggestion.scope)
        and caller.may_see(assets.site_of(suggestion.scope))
    ):
        baseline = suggestion.baseline
        return {
            "scope": suggestion.scope,
            "scheme": suggestion.scheme,
            "assessment_first": suggestion.assessment[0],
            "assessment_last": suggestion.assessment[1] - timedelta(days=1),  # the form's last day is inclusive
            "baseline_first": baseline[0] if baseline else None,
            "baseline_last": baseline[1] - timedelta(days=1) if baseline else None,
        }
    today = datetime.now(UTC).date()
    return {
        "assessment_first": today - timedelta(days=30),
        "assessment_last": today - timedelta(days=1),
        "baseline_first": today - timedelta(days=60),
        "baseline_last": today - timedelta(days=31),
    }


def _scopes(request: Request, caller: Caller, lang: Lang) -> list[tuple[str, str]]:
    assets = get_context(request).assets
    scopes: list[tuple[str, str]] = []
    park = assets.park
    if caller.may_see(None):
        scopes.append((park.id, f"{t('k_park', lang)}: {park.name or park.id}"))
    for site in assets.sites:
        if not caller.may_see(site.id):
            continue
        scopes.append((site.id, f"{t('k_site', lang)}: {site.name or site.id}"))
        for workshop in site.workshops:
            scopes.append((workshop.id, f"— {t('k_workshop', lang)}: {workshop.name or workshop.id}"))
            for line in workshop.lines:
                scopes.append((line.id, f"—— {t('k_line', lang)}: {line.name or line.id}"))
    return scopes


async def _reports_page(
    request: Request,
    caller: Caller,
    lang: Lang,
    *,
    error: str | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    service = _service(request)
    stored = await run_in_threadpool(service.all)
    visible = [s for s in stored if s.scope is not None and caller.may_see(s.site)]
    return render(
        request,
        "reports.html",
        lang,
        status_code=status_code,
        reports=visible,
        error=error,
        scopes=_scopes(request, caller, lang),
        schemes=service.certifier.schemes.all(),
        form=form or _report_form_defaults(request, caller),
        langs=LANGS,
    )


@router.get("/ui/reports", response_model=None)
async def reports(request: Request, lang: str | None = None) -> Response:
    language = _lang(request, lang)
    caller = await page_caller(request)
    if caller is None:
        return _to_signin(language)
    return await _reports_page(request, caller, language)


@router.post("/ui/reports", response_model=None)
async def generate(
    request: Request,
    scope: Annotated[str, Form(max_length=64)],
    scheme: Annotated[str, Form(max_length=64)],
    assessment_first: Annotated[date, Form()],
    assessment_last: Annotated[date, Form()],
    baseline_first_text: Annotated[str, Form(alias="baseline_first", max_length=10)] = "",
    baseline_last_text: Annotated[str, Form(alias="baseline_last", max_length=10)] = "",
    report_lang: Annotated[str, Form()] = "en",
    lang: Annotated[str, Form()] = "en",
) -> Response:
    language = _lang(request, lang)
    caller = await page_caller(request)
    if caller is None:
        return _to_signin(language)
    try:
        baseline_first, baseline_last = _day(baseline_first_text, "baseline"), _day(baseline_last_text, "baseline")
    except PeriodError as exc:
        return await _reports_page(request, caller, language, error=str(exc), status_code=422)
    form = {
        "scope": scope,
        "scheme": scheme,
        "assessment_first": assessment_first,
        "assessment_last": assessment_last,
        "baseline_first": baseline_first,
        "baseline_last": baseline_last,
        "report_lang": report_lang,
    }
    assets = get_context(request).assets
    if not assets.has_scope(scope) or not caller.may_see(assets.site_of(scope)):
        return await _reports_page(
            request, caller, language, error=t("forbidden", language), form=form, status_code=403
        )
    baseline = None
    if (baseline_first is None) != (baseline_last is None):
        return await _reports_page(
            request, caller, language, error=t("baseline_both", language), form=form, status_code=422
        )
    if baseline_first is not None and baseline_last is not None:
        baseline = (baseline_first, baseline_last + timedelta(days=1))  # the form's last day is inclusive
    query = ReportQuery(
        scope=scope,
        scheme=scheme,
        assessment=(assessment_first, assessment_last + timedelta(days=1)),
        baseline=baseline,
        language="zh" if report_lang == "zh" else "en",
    )
    try:
        archive_id = await _service(request).generate(query)
    except ReportError as exc:
        return await _reports_page(request, caller, language, error=exc.detail, form=form, status_code=exc.status)
    return RedirectResponse(f"/ui/reports/{archive_id}?lang={language}", status_code=303)


def _chart_data(report: CertificationReport, lang: Lang) -> list[dict[str, Any]]:
    """Per rule: baseline vs assessment (bars) and the metric over time (line), for charts.js."""
    charts = []
    for rule in report.rules:
        charts.append(
            {
                "rule": rule.id,
                "unit": rule.unit,
                "target": rule.target,
                "bars": [
                    *([{"label": t("baseline_value", lang), "value": rule.baseline.value}] if rule.baseline else []),
                    {"label": t("assessment_value", lang), "value": rule.assessment.value},
                ],
                "series": [{"label": p.key, "value": p.value, "group": p.period} for p in rule.series],
            }
        )
    return charts


@router.get("/ui/reports/{archive_id}", response_model=None)
async def report_page(request: Request, archive_id: str, lang: str | None = None) -> Response:
    language = _lang(request, lang)
    caller = await page_caller(request)
    if caller is None:
        return _to_signin(language)
    try:
        stored, _ = await run_in_threadpool(_service(request).read, archive_id)
    except ReportError as exc:
        return render(request, "error.html", language, status_code=exc.status, message=exc.detail)
    if stored.scope is None or not caller.may_see(stored.site):
        return render(request, "error.html", language, status_code=403, message=t("forbidden", language))
    charts = _chart_data(stored.report, language) if stored.report is not None else []
    return render(
        request,
        "report.html",
        language,
        stored=stored,
        report=stored.report,
        charts=[json.dumps(c, ensure_ascii=False) for c in charts],
    )


def verification_text(stored: StoredReport, lang: Lang) -> str:
    if stored.verified:
        return f"{t('verified', lang)} ({t('key_fp', lang, key=stored.signer, fp=stored.fingerprint)})"
    return f"{t('not_verified', lang)}: {stored.reason}"


templates.globals.update(
    verification_text=verification_text,
    number=fmt.number,
    percent=fmt.percent,
    kpi_value=fmt.kpi_value,
    kpi_note=fmt.kpi_note,
    kpi_label=fmt.kpi_label,
    age=fmt.age,
    local_time=fmt.local_time,
    oee_chart=fmt.oee_chart,
    threshold_text=threshold_text,
)
