"""TEMP stand-ins for what other branches of issue 7 deliver, so the web part runs and is tested now.

Each block names the branch that replaces it. Nothing else in the project imports this module
except the web part (api.web, api.routes.reports, api.report_service); when a branch lands, its
block here becomes an import of the real thing and then disappears.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.context import AppContext, Role
from api.deps import Caller, get_context
from core.assets import AssetModel, Line, Site, Workshop
from kpi.certification_models import (
    CertificationReport,
    Language,
    MetricValue,
    Period,
    Provenance,
    RuleResult,
    SchemeRef,
    SeriesPoint,
    Verdict,
    overall_verdict,
)
from kpi.engine import KpiEngine

COOKIE = "factory_key"

# --- TEMP until the access branch lands: Caller.site / may_see, Auditor, cookie authentication ---------


def may_see(caller: Caller, site: str | None) -> bool:
    """A key of the park (no site) sees everything; a site's key sees its own site only."""
    own = getattr(caller, "site", None)
    return own is None or own == site


def caller_for_key(context: AppContext, presented: str) -> Caller | None:
    found: Role | None = None
    for key, role in context.api_keys.items():
        if hmac.compare_digest(presented.encode(), key.encode()):
            found = role
    return Caller(found) if found is not None else None


_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_bearer = HTTPBearer(auto_error=False)


def _authenticate(
    request: Request,
    api_key: Annotated[str | None, Depends(_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    presented = api_key or (bearer.credentials if bearer else None) or request.cookies.get(COOKIE)
    if not presented:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing API key", {"WWW-Authenticate": "Bearer"})
    caller = caller_for_key(get_context(request), presented)
    if caller is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key", {"WWW-Authenticate": "Bearer"})
    if caller.role.rank < Role.AUDITOR.rank:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs the auditor role or above")
    return caller


Auditor = Annotated[Caller, Depends(_authenticate)]


# --- TEMP until the park branch lands: the park level of the asset model ------------------------------

ScopeKind = Literal["park", "site", "workshop", "line", "equipment"]


def park_of(assets: AssetModel) -> tuple[str, str]:
    return "park", "Park"


def sites_of(assets: AssetModel) -> list[Site]:
    return [assets.site]


def site_of(assets: AssetModel, scope: str) -> str | None:
    if scope == park_of(assets)[0]:
        return None
    return assets.site.id if assets.has_scope(scope) else None


def has_scope(assets: AssetModel, scope: str) -> bool:
    return scope == park_of(assets)[0] or assets.has_scope(scope)


def scope_kind(assets: AssetModel, scope: str) -> ScopeKind:
    site = assets.site
    if scope == park_of(assets)[0]:
        return "park"
    if scope == site.id:
        return "site"
    if any(w.id == scope for w in site.workshops):
        return "workshop"
    if any(li.id == scope for w in site.workshops for li in w.lines):
        return "line"
    return "equipment"


def scope_name(assets: AssetModel, scope: str) -> str:
    if scope == park_of(assets)[0]:
        return park_of(assets)[1]
    site = assets.site
    nodes: list[Site | Workshop | Line] = [site, *site.workshops, *(li for w in site.workshops for li in w.lines)]
    for node in nodes:
        if node.id == scope:
            return node.name or node.id
    return assets.equipment(scope).name or scope


def engine_scope(assets: AssetModel, scope: str) -> str:
    """The engine cannot compute a park yet: the park of one site is its site."""
    return assets.site.id if scope == park_of(assets)[0] else scope


def asset_digest(assets: AssetModel) -> str:
    return hashlib.sha256(assets.site.model_dump_json().encode()).hexdigest()


# --- TEMP until the reporting branch lands: canonical JSON, signatures, renderings, labels ------------


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed_report_bytes(report: CertificationReport, private_key: Ed25519PrivateKey) -> bytes:
    body = report.model_dump(mode="json")
    digest = hashlib.sha256(canonical_json(body)).hexdigest()
    signature = private_key.sign(bytes.fromhex(digest))
    public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return canonical_json(
        {
            "report": body,
            "signature": {
                "algorithm": "Ed25519",
                "sha256": digest,
                "value": base64.b64encode(signature).decode(),
                "public_key": base64.b64encode(public).decode(),
            },
        }
    )


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    reason: str | None
    report: CertificationReport | None


class ReportKeyError(Exception):
    pass


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the key's DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def verify_report_bytes(data: bytes, public_key: Ed25519PublicKey) -> Verification:
    try:
        document = json.loads(data)
        body, signature = document["report"], document["signature"]
        digest = hashlib.sha256(canonical_json(body)).hexdigest()
        if digest != signature["sha256"]:
            return Verification(False, "the report's SHA-256 does not match its content", None)
        public_key.verify(base64.b64decode(signature["value"]), bytes.fromhex(digest))
        if canonical_json(document) != data:
            return Verification(False, "the file is not in canonical form", None)
        return Verification(True, None, CertificationReport.model_validate(body))
    except (ValueError, KeyError, TypeError) as exc:
        return Verification(False, f"not a signed report: {exc}", None)
    except Exception as exc:  # cryptography's InvalidSignature
        return Verification(False, f"the signature does not match the site's key ({type(exc).__name__})", None)


class SiteKeys:
    def __init__(self, keys_dir: Path):
        self.keys_dir = keys_dir

    def private(self, site: str) -> Ed25519PrivateKey:
        path = self.keys_dir / f"{site}.pem"
        if not path.exists():
            raise ReportKeyError(
                f"no signing key for {site!r}: {path} does not exist"
                f" (create it with: factory report keygen --site {site})"
            )
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key

    def public_path(self, site: str) -> Path:
        return self.keys_dir / f"{site}.pub"

    def public(self, site: str) -> Ed25519PublicKey:
        path = self.public_path(site)
        if not path.exists():
            raise ReportKeyError(f"no public key: {path} does not exist")
        key = serialization.load_pem_public_key(path.read_bytes())
        assert isinstance(key, Ed25519PublicKey)
        return key

    def generate(self, site: str) -> Ed25519PublicKey:
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        (self.keys_dir / f"{site}.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (self.keys_dir / f"{site}.pub").write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        return key.public_key()


_LABELS: dict[str, tuple[str, str]] = {
    "pass": ("Pass", "通过"),
    "fail": ("Fail", "未通过"),
    "insufficient_evidence": ("Insufficient evidence", "证据不足"),
    "baseline": ("Baseline", "基准期"),
    "assessment": ("Assessment", "评估期"),
    "verdict": ("Verdict", "结论"),
    "threshold": ("Threshold", "阈值"),
}


def label(key: str, language: Language) -> str:
    en, zh = _LABELS.get(key, (key, key))
    return zh if language == "zh" else en


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def render_html(report: CertificationReport, language: Language) -> str:
    rows = []
    for rule in report.rules:
        name = rule.label_zh if language == "zh" else rule.label_en
        values = [p.value for p in rule.series if p.value is not None]
        top = max(values, default=1.0) or 1.0
        bars = "".join(
            f'<rect x="{i * 12}" y="{40 - 40 * (p.value or 0) / top:.1f}" width="10" '
            f'height="{40 * (p.value or 0) / top:.1f}" class="{p.period}"/>'
            for i, p in enumerate(rule.series)
        )
        rows.append(
            f"<tr><th scope='row'>{html.escape(name)}</th><td>{_fmt(rule.baseline.value if rule.baseline else None)}"
            f"</td><td>{_fmt(rule.assessment.value)}</td><td>{_fmt(rule.target)}</td>"
            f"<td class='verdict-{rule.verdict}'>{label(rule.verdict, language)}</td>"
            f"<td><svg width='{12 * len(rule.series)}' height='40' role='img'>{bars}</svg></td></tr>"
        )
    title = report.scheme.title_zh if language == "zh" else report.scheme.title_en
    return (
        f"<!doctype html><html lang='{language}'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>.baseline{fill:#999}.assessment{fill:#2a6}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(report.scope_name)}: "
        f"<strong class='verdict-{report.verdict}'>{label(report.verdict, language)}</strong></p><table>"
        f"<tr><th>{label('threshold', language)}</th><th>{label('baseline', language)}</th>"
        f"<th>{label('assessment', language)}</th><th>target</th><th>{label('verdict', language)}</th><th></th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )


def render_csv(report: CertificationReport, language: Language) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rule", "metric", "baseline", "assessment", "target", "verdict"])
    for rule in report.rules:
        writer.writerow(
            [
                rule.id,
                rule.label_zh if language == "zh" else rule.label_en,
                rule.baseline.value if rule.baseline else "",
                rule.assessment.value,
                rule.target,
                label(rule.verdict, language),
            ]
        )
    return out.getvalue()


CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


def render_pdf(report: CertificationReport, language: Language) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.add_font("noto", fname=str(CJK_FONT), collection_font_number=2)
    pdf.set_font("noto", size=11)
    title = report.scheme.title_zh if language == "zh" else report.scheme.title_en
    pdf.multi_cell(
        0, 8, f"{title}\n{report.scope_name}: {label(report.verdict, language)}", new_x="LMARGIN", new_y="NEXT"
    )
    for rule in report.rules:
        name = rule.label_zh if language == "zh" else rule.label_en
        pdf.multi_cell(
            0,
            7,
            f"{name}: {_fmt(rule.assessment.value)} -> {label(rule.verdict, language)}",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    return bytes(pdf.output())


# --- TEMP until the certification branch lands: schemes and their evaluation --------------------------


@dataclass(frozen=True, slots=True)
class StandInScheme:
    id: str
    version: str
    title_en: str
    title_zh: str


class SchemeRegistry:
    def __init__(self, schemes: Sequence[StandInScheme]):
        self._schemes = {s.id: s for s in schemes}

    @classmethod
    def load(cls, builtin_dir: Path | None = None, extra_dirs: Sequence[Path] = ()) -> SchemeRegistry:
        return cls([StandInScheme("pilot_targets", "1", "Pilot project targets", "试点项目目标")])

    def get(self, scheme_id: str) -> StandInScheme:
        try:
            return self._schemes[scheme_id]
        except KeyError:
            raise KeyError(f"unknown scheme {scheme_id!r}") from None

    def all(self) -> list[StandInScheme]:
        return list(self._schemes.values())


_STAND_IN_RULES = (
    ("oee", "increase_by", 0.2),
    ("defect_rate", "reduce_by", 0.2),
    ("kwh_per_good_part", "reduce_by", 0.1),
)


class Certifier:
    def __init__(self, engine: KpiEngine, assets: AssetModel, schemes: SchemeRegistry, software_version: str):
        self.engine, self.assets, self.schemes, self.software_version = engine, assets, schemes, software_version

    def _window(self, period: tuple[date, date]) -> Period:
        tz = self.assets.timezone
        start = datetime.combine(period[0], time(), tz).astimezone(UTC)
        end = datetime.combine(period[1], time(), tz).astimezone(UTC)
        return Period(start=start, end=end, label=f"{period[0]} – {period[1] - timedelta(days=1)}")

    async def evaluate(
        self,
        scope: str,
        scheme_id: str,
        assessment: tuple[date, date],
        baseline: tuple[date, date] | None,
        language: Language,
        query: dict[str, str],
    ) -> CertificationReport:
        scheme = self.schemes.get(scheme_id)
        target = engine_scope(self.assets, scope)
        periods = {"assessment": self._window(assessment)}
        if baseline is not None:
            periods["baseline"] = self._window(baseline)
        reports = {
            name: await self.engine.report(target, p.start, p.end, group_by="day") for name, p in periods.items()
        }
        rules = []
        for metric, comparison, threshold in _STAND_IN_RULES:
            values = {}
            for name, rep in reports.items():
                kpi = next(k for k in rep.kpis if k.key == metric)
                values[name] = MetricValue(
                    value=kpi.value, unit=kpi.unit, status=kpi.status, coverage=kpi.coverage, base={}, inputs=[]
                )
                label_en, label_zh, unit = kpi.label_en, kpi.label_zh, kpi.unit
            series = [
                SeriesPoint(
                    key=g.key,
                    period=name,  # type: ignore[arg-type]
                    start=g.start,
                    end=g.end,
                    value=g.kpis.get(metric),
                    status=g.status.get(metric, "insufficient_evidence"),
                )
                for name, rep in reports.items()
                for g in rep.groups
            ]
            base, now = values.get("baseline"), values["assessment"]
            change = goal = None
            verdict: Verdict = "insufficient_evidence"
            if base is not None and base.value and now.value is not None and base.status == now.status == "ok":
                change = (now.value - base.value) / base.value
                goal = base.value * (1 + threshold if comparison == "increase_by" else 1 - threshold)
                met = now.value >= goal if comparison == "increase_by" else now.value <= goal
                verdict = "pass" if met else "fail"
            rules.append(
                RuleResult(
                    id=f"{metric}-{comparison}",
                    metric=metric,
                    definition=None,
                    label_en=label_en,
                    label_zh=label_zh,
                    unit=unit,
                    comparison=comparison,  # type: ignore[arg-type]
                    threshold=threshold,
                    baseline=base,
                    assessment=now,
                    change=change,
                    target=goal,
                    verdict=verdict,
                    series=sorted(series, key=lambda p: p.start),
                )
            )
        generated = datetime.now(UTC)
        body = {"scope": scope, "scheme": scheme_id, **query}
        return CertificationReport(
            report_id=hashlib.sha256(canonical_json(body)).hexdigest()[:16],
            language=language,
            scheme=SchemeRef(
                id=scheme.id,
                version=scheme.version,
                title_en=scheme.title_en,
                title_zh=scheme.title_zh,
                sha256="0" * 64,
            ),
            scope=scope,
            scope_kind=scope_kind(self.assets, scope),
            scope_name=scope_name(self.assets, scope),
            sites=[s.id for s in sites_of(self.assets)],
            baseline=periods.get("baseline"),
            assessment=periods["assessment"],
            rules=rules,
            verdict=overall_verdict([r.verdict for r in rules]),
            provenance=Provenance(
                software_version=self.software_version,
                scheme_version=scheme.version,
                asset_model_sha256=asset_digest(self.assets),
                input_versions=[],
                query=query,
                generated_at=generated,
            ),
        )


def require_scope(caller: Caller, assets: AssetModel, scope_id: str) -> None:
    """TEMP until the access branch lands (api.deps.require_scope)."""
    if not has_scope(assets, scope_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown scope {scope_id!r}")
    if not may_see(caller, site_of(assets, scope_id)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"scope {scope_id!r} is outside this key's site")


def problem(status_code: int, title: str, detail: str, **extra: Any) -> Any:
    """TEMP until the access branch lands (api.problems.problem)."""
    from fastapi.responses import JSONResponse

    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status_code, "detail": detail, **extra},
        status_code=status_code,
        media_type="application/problem+json",
    )
