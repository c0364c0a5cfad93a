"""``factory report``: signing keys and offline verification of signed certification reports.

* ``factory report keygen --site S [--keys-dir D]`` makes the Ed25519 key pair of a site (or a park:
  its id) in the keys directory; an existing key is never overwritten.
* ``factory report verify FILE (--public-key P | --keys-dir D)`` checks a signed report file offline:
  exit 0 and ``verified: ...``, or exit 1 and the reason.
* ``factory report generate --scope S --scheme X --assessment START/END [--baseline START/END] [--language zh|en]
  [--format pdf ...] [--output-dir D]`` evaluates a scheme over a scope from the store, signs the report with
  the scope's site key and archives it under ``api.reports_dir``, exactly as ``POST /v1/reports`` does;
  ``--format`` also writes renderings of it.
* ``factory report render FILE --format pdf|html|csv --language zh|en [-o OUT] (--public-key P | --keys-dir D)``
  verifies the file, then renders it; an unverified file is never rendered.

The keys directory defaults to the settings' ``reports.keys_dir`` (``--config`` or ``FACTORY_CONFIG``);
verification needs no settings at all when given ``--public-key`` or ``--keys-dir``.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ConfigError

if TYPE_CHECKING:
    from api.reporting.signing import Verification


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="report_action", required=True)
    keygen = actions.add_parser("keygen", help="make the Ed25519 signing key pair of a site (or park)")
    keygen.add_argument("--site", required=True, help="site id (the park id for park-scope reports)")
    keygen.add_argument("--keys-dir", type=Path, help="default: the settings' reports.keys_dir")
    keygen.add_argument("--config", type=Path, help="settings YAML (default: $FACTORY_CONFIG)")
    verify = actions.add_parser("verify", help="check a signed report file offline")
    verify.add_argument("file", type=Path, help="the signed report (canonical JSON)")
    which = verify.add_mutually_exclusive_group()
    which.add_argument("--public-key", type=Path, help="the signer's public key (PEM), e.g. site-cq.pub")
    which.add_argument("--keys-dir", type=Path, help="a directory of <site>.pub files")
    verify.add_argument("--config", type=Path, help="settings YAML, for the default keys directory")
    generate = actions.add_parser(
        "generate", help="evaluate a scheme over a scope, sign the report and archive it (as POST /v1/reports does)"
    )
    generate.add_argument("--scope", required=True, help="the park, a site, workshop or line id")
    generate.add_argument("--scheme", required=True, help="scheme id (kpi/schemes/*.yaml, certification.schemes_dir)")
    generate.add_argument(
        "--assessment", required=True, type=_period, metavar="START/END", help="local dates, END exclusive"
    )
    generate.add_argument("--baseline", type=_period, metavar="START/END", help="for relative rules; END exclusive")
    generate.add_argument("--language", choices=["zh", "en"], default="en")
    generate.add_argument(
        "--format", action="append", choices=["pdf", "html", "csv"], default=[], help="also write this rendering"
    )
    generate.add_argument("--output-dir", type=Path, help="where renderings go (default: the current directory)")
    generate.add_argument("--config", type=Path, help="settings YAML (default: $FACTORY_CONFIG)")
    render = actions.add_parser("render", help="verify a signed report file, then render it as PDF, HTML or CSV")
    render.add_argument("file", type=Path, help="the signed report (canonical JSON)")
    render.add_argument("--format", choices=["pdf", "html", "csv"], required=True)
    render.add_argument("--language", choices=["zh", "en"], required=True)
    render.add_argument("-o", "--output", type=Path, help="default: FILE with the format's suffix and the language")
    which = render.add_mutually_exclusive_group()
    which.add_argument("--public-key", type=Path, help="the signer's public key (PEM)")
    which.add_argument("--keys-dir", type=Path, help="a directory of <site>.pub files")
    render.add_argument("--config", type=Path, help="settings YAML, for the default keys directory")


def _period(text: str) -> tuple[date, date]:
    start, sep, end = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        example = "2026-05-25/2026-06-01"
        raise argparse.ArgumentTypeError(f"{text!r} is not a period START/END of dates, e.g. {example}") from None


def _keys_dir(args: argparse.Namespace) -> Path:
    if args.keys_dir is not None:
        return Path(args.keys_dir)
    path = args.config or os.environ.get("FACTORY_CONFIG")
    if not path:
        raise ConfigError("--keys-dir", "no keys directory given (use --keys-dir D, or --config FILE for its default)")
    from core.settings import load_settings

    return load_settings(path).reports.keys_dir


def _keygen(args: argparse.Namespace) -> int:
    from api.reporting.signing import ReportKeyError, SiteKeys, key_fingerprint

    keys = SiteKeys(_keys_dir(args))
    try:
        public = keys.generate(args.site)
    except ReportKeyError as exc:
        print(f"factory: {exc}", file=sys.stderr)
        return 1
    print(f"signing key for {args.site}: {keys.private_path(args.site)} (keep it secret, mode 0600)")
    print(f"public key: {keys.public_path(args.site)} (give it to auditors)")
    print(f"key fingerprint (SHA-256): {key_fingerprint(public)}")
    return 0


def _verified(args: argparse.Namespace) -> Verification | None:
    """The verified file, or None after printing why not."""
    from api.reporting.signing import ReportKeyError, SiteKeys, load_public_key, verify_report_bytes, verify_with_keys

    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"not verified: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return None
    try:
        if args.public_key is not None:
            result = verify_report_bytes(data, load_public_key(args.public_key))
        else:
            result = verify_with_keys(data, SiteKeys(_keys_dir(args)))
    except ReportKeyError as exc:
        print(f"not verified: {exc}", file=sys.stderr)
        return None
    if not result.ok or result.report is None or result.signature is None:
        print(f"not verified: {args.file}: {result.reason}", file=sys.stderr)
        return None
    return result


def _verify(args: argparse.Namespace) -> int:
    result = _verified(args)
    if result is None:
        return 1
    assert result.report is not None and result.signature is not None
    report, signature = result.report, result.signature
    print(
        f"verified: {args.file}: {report.scope_kind} {report.scope} ({report.scope_name}),"
        f" scheme {report.scheme.id} v{report.scheme.version}, verdict {report.verdict},"
        f" assessment {report.assessment.label}; signed for {signature.site} with key {signature.key_id};"
        f" report SHA-256 {signature.sha256}"
    )
    return 0


def _render(args: argparse.Namespace) -> int:
    from api.reporting import FontMissingError, render_csv, render_html, render_pdf

    result = _verified(args)
    if result is None:
        return 1
    assert result.report is not None
    output = args.output or Path(args.file).with_suffix(f".{args.language}.{args.format}")
    try:
        if args.format == "pdf":
            data = render_pdf(result.report, args.language, result.signature)
        elif args.format == "html":
            data = render_html(result.report, args.language, result.signature).encode("utf-8")
        else:
            data = render_csv(result.report, args.language, result.signature).encode("utf-8")
    except FontMissingError as exc:
        print(f"factory: {exc}", file=sys.stderr)
        return 1
    output.write_bytes(data)
    print(f"verified and rendered: {output} ({args.format}, {args.language}, verdict {result.report.verdict})")
    return 0


async def _generate_report(args: argparse.Namespace) -> int:
    from api.report_service import ReportArchive, ReportError, ReportQuery, ReportService, software_version
    from api.reporting import SiteKeys, render_csv, render_html, render_pdf
    from core.assets import load_asset_model
    from core.settings import load_settings
    from core.stores import open_store
    from core.stores.inputs import InputStore
    from factory.runtime import closing_store
    from kpi.certification import Certifier
    from kpi.engine import KpiEngine
    from kpi.schemes import SchemeRegistry

    path = args.config or os.environ.get("FACTORY_CONFIG")
    if not path:
        raise ConfigError("--config", "no settings file given (use --config FILE or FACTORY_CONFIG)")
    settings = load_settings(path)
    assets = load_asset_model(settings.assets)
    if not assets.has_scope(args.scope):
        raise ConfigError("--scope", f"unknown scope {args.scope!r}: not the park, a site, workshop or line")
    async with closing_store(open_store(settings.store)) as store:
        engine = KpiEngine.from_settings(store, assets, settings.kpi)
        inputs = InputStore.for_assets(settings.inputs.path, assets)
        schemes = SchemeRegistry.from_settings(settings.certification)
        certifier = Certifier(engine, assets, inputs, schemes, software_version())
        archive = ReportArchive(settings.api.reports_dir)
        service = ReportService(certifier, assets, SiteKeys(settings.reports.keys_dir), archive)
        query = ReportQuery(args.scope, args.scheme, args.assessment, args.baseline, args.language)
        try:
            archive_id = await service.generate(query)
        except ReportError as exc:
            print(f"factory: report: {exc.title}: {exc.detail}", file=sys.stderr)
            return 1
    stored, _ = service.read(archive_id)
    report = stored.report
    if report is None:  # freshly signed with the site's own key: it verifies unless the key files disagree
        print(f"factory: report {archive_id} was archived but does not verify: {stored.reason}", file=sys.stderr)
        return 1
    print(
        f"report {archive_id}: {report.scope_kind} {report.scope}, scheme {report.scheme.id} v{report.scheme.version},"
        f" verdict {report.verdict}; signed with the key of {stored.signer} ({stored.fingerprint})"
    )
    print(f"  signed file: {settings.api.reports_dir / (archive_id + '.json')}")
    for rule in report.rules:
        print(f"  {rule.verdict:<22} {rule.id}" + (f": {rule.reason}" if rule.reason else ""))
    output_dir = args.output_dir or Path.cwd()
    for fmt in dict.fromkeys(args.format):
        if fmt == "pdf":
            data = render_pdf(report, args.language, stored.signature)
        elif fmt == "html":
            data = render_html(report, args.language, stored.signature).encode("utf-8")
        else:
            data = render_csv(report, args.language, stored.signature).encode("utf-8")
        output_dir.mkdir(parents=True, exist_ok=True)
        target = output_dir / f"{archive_id}.{args.language}.{fmt}"
        target.write_bytes(data)
        print(f"  {fmt}: {target}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    if args.report_action == "keygen":
        return _keygen(args)
    if args.report_action == "generate":
        import asyncio

        return asyncio.run(_generate_report(args))
    if args.report_action == "render":
        return _render(args)
    return _verify(args)
