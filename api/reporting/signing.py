"""Signed report files: SHA-256 of the canonical report, Ed25519 signature, offline verification.

The file is the canonical JSON (``api.reporting.canonical``) of::

    {"report": <the CertificationReport>,
     "signature": {"algorithm": "Ed25519", "site": <signer>, "key_id": <fingerprint>,
                   "sha256": <hex of the canonical report bytes>, "value": <base64 signature>}}

* ``site`` is the key's name: the report's site, or the park id for a park-scope report.
* ``key_id`` is the SHA-256 (hex) of the public key's DER SubjectPublicKeyInfo, the same as
  ``openssl pkey -pubin -in SITE.pub -outform DER | sha256sum``.
* ``value`` signs the canonical JSON of the signature object without ``value`` (algorithm, key_id,
  sha256, site): the hash binds the report, and the signer's name and key cannot be swapped.

Verification takes the file's bytes and insists on the canonical form byte for byte, so one
altered byte anywhere (a digit, a verdict, the signature, a space added) fails, with the reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from api.reporting.canonical import CanonicalFormError, canonical_json, parse_json_int, report_document
from kpi.certification_models import CertificationReport

ALGORITHM = "Ed25519"
_SIGNATURE_FIELDS = frozenset({"algorithm", "site", "key_id", "sha256", "value"})
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class ReportKeyError(Exception):
    """A signing or verification key is missing, unreadable, too widely readable or already exists."""


class SigningError(Exception):
    """A report cannot be signed (it has no single signer, or no canonical form)."""


@dataclass(frozen=True, slots=True)
class Signature:
    algorithm: str
    site: str
    key_id: str
    sha256: str
    value: str


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of checking a signed report file; ``reason`` says why it failed (None when ok)."""

    ok: bool
    reason: str | None
    report: CertificationReport | None = None
    signature: Signature | None = None


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the key's DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def report_signer(report: CertificationReport) -> str:
    """Whose key signs the report: the park id for a park scope, else the one site of the scope."""
    if report.scope_kind == "park":
        return report.scope
    if len(report.sites) != 1:
        raise SigningError(f"a {report.scope_kind} report must name exactly one site, not {report.sites}")
    return report.sites[0]


def _signed_message(signature: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in signature.items() if k != "value"})


def signed_report_bytes(report: CertificationReport, private_key: Ed25519PrivateKey) -> bytes:
    """The signed file: canonical JSON of ``{"report": ..., "signature": ...}``."""
    document = report_document(report)
    try:
        report_bytes = canonical_json(document)
    except CanonicalFormError as exc:
        raise SigningError(f"report {report.report_id} has no canonical form: {exc}") from exc
    signature: dict[str, Any] = {
        "algorithm": ALGORITHM,
        "site": report_signer(report),
        "key_id": key_fingerprint(private_key.public_key()),
        "sha256": hashlib.sha256(report_bytes).hexdigest(),
    }
    signature["value"] = base64.b64encode(private_key.sign(_signed_message(signature))).decode("ascii")
    return canonical_json({"report": document, "signature": signature})


def _first_difference(a: bytes, b: bytes) -> int:
    for n, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return n
    return min(len(a), len(b))


def _fail(reason: str, signature: Signature | None = None) -> Verification:
    return Verification(ok=False, reason=reason, signature=signature)


def read_signature(data: bytes) -> tuple[dict[str, Any], Signature] | str:
    """The parsed file and its signature block, or the reason it has none."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {exc.start})"
    try:
        document = json.loads(text, parse_int=parse_json_int)
    except RecursionError:
        return "not a report file: JSON nested too deeply"
    except json.JSONDecodeError as exc:
        return f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    if not isinstance(document, dict) or set(document) != {"report", "signature"}:
        keys = sorted(document) if isinstance(document, dict) else type(document).__name__
        return f"not a signed report: expected exactly the members 'report' and 'signature', found {keys}"
    block = document["signature"]
    if not isinstance(block, dict) or set(block) != _SIGNATURE_FIELDS:
        found = sorted(block) if isinstance(block, dict) else type(block).__name__
        return f"signature block must have exactly {sorted(_SIGNATURE_FIELDS)}, found {found}"
    if not all(isinstance(block[k], str) for k in _SIGNATURE_FIELDS):
        return "signature block: every member must be a string"
    return document, Signature(**block)


def verify_report_bytes(data: bytes, public_key: Ed25519PublicKey) -> Verification:
    """Check a signed report file against a public key, offline. Any change to the bytes fails."""
    parsed = read_signature(data)
    if isinstance(parsed, str):
        return _fail(parsed)
    document, signature = parsed
    try:
        canonical = canonical_json(document)
    except CanonicalFormError as exc:
        return _fail(f"not in canonical form: {exc}", signature)
    if canonical != data:
        at = _first_difference(canonical, data)
        return _fail(
            f"not in canonical form (altered or re-formatted): first difference at byte {at}"
            f" ({len(data)} bytes, canonical form {len(canonical)})",
            signature,
        )
    if signature.algorithm != ALGORITHM:
        return _fail(f"unsupported signature algorithm {signature.algorithm!r} (expected {ALGORITHM})", signature)
    expected_key = key_fingerprint(public_key)
    if signature.key_id != expected_key:
        return _fail(
            f"signed with key {signature.key_id} (site {signature.site!r}),"
            f" not with the given public key {expected_key}",
            signature,
        )
    actual_hash = hashlib.sha256(canonical_json(document["report"])).hexdigest()
    if signature.sha256 != actual_hash:
        return _fail(
            f"report content altered: its SHA-256 is {actual_hash}, the signature covers {signature.sha256}",
            signature,
        )
    try:
        raw = base64.b64decode(signature.value, validate=True)
    except (binascii.Error, ValueError):
        return _fail("signature value is not valid base64", signature)
    if base64.b64encode(raw).decode("ascii") != signature.value:  # unused trailing bits may differ
        return _fail("signature value is not in canonical base64", signature)
    try:
        public_key.verify(raw, _signed_message(document["signature"]))
    except InvalidSignature:
        return _fail("signature does not match (the signature or its signed fields were altered)", signature)
    try:
        report = CertificationReport.model_validate(document["report"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return _fail(f"signed, but not a certification report: {where}: {first['msg']}", signature)
    try:
        signer = report_signer(report)
    except SigningError as exc:
        return _fail(str(exc), signature)
    if signer != signature.site:
        return _fail(f"report of {signer!r} signed under the name {signature.site!r}", signature)
    return Verification(ok=True, reason=None, report=report, signature=signature)


class SiteKeys:
    """Per-site Ed25519 keys in one directory: ``<site>.pem`` (private, PKCS#8 PEM, mode 0600) and
    ``<site>.pub`` (public, SubjectPublicKeyInfo PEM). A park's key is named after the park id."""

    def __init__(self, keys_dir: Path | str):
        self.keys_dir = Path(keys_dir)

    def _path(self, site: str, suffix: str) -> Path:
        if not _KEY_NAME.match(site) or ".." in site:
            raise ReportKeyError(f"{site!r} is not a usable key name (letters, digits, '_', '.', '-')")
        return self.keys_dir / f"{site}{suffix}"

    def private_path(self, site: str) -> Path:
        return self._path(site, ".pem")

    def public_path(self, site: str) -> Path:
        return self._path(site, ".pub")

    def generate(self, site: str) -> Ed25519PublicKey:
        """Make a key pair for ``site``; never overwrites an existing key."""
        private_path, public_path = self.private_path(site), self.public_path(site)
        for path in (private_path, public_path):
            if path.exists():
                raise ReportKeyError(f"{path} already exists; keys are never overwritten (move it away first)")
        self.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = key.public_key()
        public_pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        try:
            _write_new(private_path, pem, 0o600)
            _write_new(public_path, public_pem, 0o644)
        except FileExistsError as exc:
            raise ReportKeyError(f"{exc.filename} appeared while the key was made; nothing overwritten") from exc
        return public

    def private(self, site: str) -> Ed25519PrivateKey:
        path = self.private_path(site)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise ReportKeyError(
                f"no signing key for {site!r}: {path} does not exist"
                f" (create it with: factory report keygen --site {site})"
            ) from None
        except OSError as exc:
            raise ReportKeyError(f"cannot read signing key {path}: {exc.strerror}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ReportKeyError(
                f"refusing signing key {path}: it is accessible to group or others (mode {stat.filemode(mode)});"
                f" run: chmod 600 {path}"
            )
        key = _load_pem(path, private=True)
        if not isinstance(key, Ed25519PrivateKey):
            raise ReportKeyError(f"{path} is not an Ed25519 private key")
        return key

    def public(self, site: str) -> Ed25519PublicKey:
        return load_public_key(self.public_path(site))


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (SubjectPublicKeyInfo)."""
    path = Path(path)
    if not path.exists():
        raise ReportKeyError(f"no public key: {path} does not exist")
    key = _load_pem(path, private=False)
    if not isinstance(key, Ed25519PublicKey):
        raise ReportKeyError(f"{path} is not an Ed25519 public key")
    return key


def verify_with_keys(data: bytes, keys: SiteKeys) -> Verification:
    """Verify a file against the public key of the site the report belongs to (from ``keys``)."""
    parsed = read_signature(data)
    if isinstance(parsed, str):
        return _fail(parsed)
    _, signature = parsed
    try:
        public = keys.public(signature.site)
    except ReportKeyError as exc:
        return _fail(str(exc), signature)
    return verify_report_bytes(data, public)


def _load_pem(path: Path, *, private: bool) -> object:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReportKeyError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        if private:
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ReportKeyError(f"{path} is not a readable PEM key: {exc}") from exc


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, mode)  # the umask may have narrowed it; a public key is meant to be read
