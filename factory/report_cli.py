"""``factory report``: signing keys and offline verification of signed certification reports.

* ``factory report keygen --site S [--keys-dir D]`` makes the Ed25519 key pair of a site (or a park:
  its id) in the keys directory; an existing key is never overwritten.
* ``factory report verify FILE (--public-key P | --keys-dir D)`` checks a signed report file offline:
  exit 0 and ``verified: ...``, or exit 1 and the reason.
* ``factory report render FILE --format pdf|html|csv --language zh|en [-o OUT] (--public-key P | --keys-dir D)``
  verifies the file, then renders it; an unverified file is never rendered.

The keys directory defaults to the settings' ``reports.keys_dir`` (``--config`` or ``FACTORY_CONFIG``);
verification needs no settings at all when given ``--public-key`` or ``--keys-dir``.
"""

from __future__ import annotations

import argparse
import os
import sys
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
    render = actions.add_parser("render", help="verify a signed report file, then render it as PDF, HTML or CSV")
    render.add_argument("file", type=Path, help="the signed report (canonical JSON)")
    render.add_argument("--format", choices=["pdf", "html", "csv"], required=True)
    render.add_argument("--language", choices=["zh", "en"], required=True)
    render.add_argument("-o", "--output", type=Path, help="default: FILE with the format's suffix and the language")
    which = render.add_mutually_exclusive_group()
    which.add_argument("--public-key", type=Path, help="the signer's public key (PEM)")
    which.add_argument("--keys-dir", type=Path, help="a directory of <site>.pub files")
    render.add_argument("--config", type=Path, help="settings YAML, for the default keys directory")


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


def run_report(args: argparse.Namespace) -> int:
    if args.report_action == "keygen":
        return _keygen(args)
    if args.report_action == "render":
        return _render(args)
    return _verify(args)
