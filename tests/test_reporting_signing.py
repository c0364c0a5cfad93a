"""Signed report files: round trip, one altered byte anywhere fails, another site's key fails, keys."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.reporting.signing import (
    ReportKeyError,
    SigningError,
    SiteKeys,
    key_fingerprint,
    report_signer,
    signed_report_bytes,
    verify_report_bytes,
    verify_with_keys,
)
from tests.reporting_fixtures import SAMPLE_RULES, sample_report


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def signed(key: Ed25519PrivateKey) -> bytes:
    return signed_report_bytes(sample_report("zh"), key)


def _altered(data: bytes, needle: bytes, replacement: bytes, occurrence: int = 0) -> bytes:
    at = -1
    for _ in range(occurrence + 1):
        at = data.index(needle, at + 1)
    return data[:at] + replacement + data[at + len(needle) :]


def test_a_signed_report_verifies_and_reads_back_as_the_same_report(key: Ed25519PrivateKey, signed: bytes) -> None:
    result = verify_report_bytes(signed, key.public_key())
    assert result.ok, result.reason
    assert result.reason is None
    assert result.report == sample_report("zh")
    assert result.signature is not None
    assert result.signature.site == "site-cq"
    assert result.signature.key_id == key_fingerprint(key.public_key())


def test_the_file_is_the_canonical_json_of_report_and_signature(signed: bytes) -> None:
    document = json.loads(signed)
    assert set(document) == {"report", "signature"}
    assert set(document["signature"]) == {"algorithm", "site", "key_id", "sha256", "value"}
    assert document["signature"]["algorithm"] == "Ed25519"
    assert signed == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_the_documented_check_without_the_platform_verifies_a_file(key: Ed25519PrivateKey, signed: bytes) -> None:
    # docs/reports.md: an auditor's check with json, hashlib and cryptography only.
    import base64
    import hashlib

    sig = json.loads(signed)["signature"]
    report_bytes = signed[len(b'{"report":') : signed.rindex(b',"signature":')]
    assert hashlib.sha256(report_bytes).hexdigest() == sig["sha256"]
    message = json.dumps({k: v for k, v in sig.items() if k != "value"}, sort_keys=True, separators=(",", ":"))
    key.public_key().verify(base64.b64decode(sig["value"]), message.encode())


def test_signing_the_same_report_twice_gives_the_same_bytes(key: Ed25519PrivateKey, signed: bytes) -> None:
    # Ed25519 is deterministic and the report's form is canonical: regenerating gives identical files.
    assert signed_report_bytes(sample_report("zh"), key) == signed


@pytest.mark.parametrize(
    ("needle", "replacement", "reason"),
    [
        (b'"value":0.75', b'"value":0.76', "report content altered"),  # a digit of a number
        (b'"value":0.75', b'"value":0.7a', "not valid JSON"),  # a number made unreadable
        (b'"verdict":"fail"', b'"verdict":"pass"', "report content altered"),  # the overall verdict
        (b'"verdict":"fail"', b'"verdict":"faiL"', "report content altered"),  # one letter of a verdict
        (b'"site":"site-cq","value"', b'"site":"site-cr","value"', "signature does not match"),  # the signer's name
        (b'"algorithm":"Ed25519"', b'"algorithm":"Ed25518"', "unsupported signature algorithm"),
        (b'"report":{', b'"report" :{', "not in canonical form"),  # whitespace added
        (b'"report":{', b'"report":{ ', "not in canonical form"),
    ],
)
def test_one_altered_byte_fails_with_the_reason(
    key: Ed25519PrivateKey, signed: bytes, needle: bytes, replacement: bytes, reason: str
) -> None:
    result = verify_report_bytes(_altered(signed, needle, replacement), key.public_key())
    assert not result.ok
    assert result.reason is not None and reason in result.reason
    assert result.report is None


def test_an_altered_signature_hash_or_key_id_fails(key: Ed25519PrivateKey, signed: bytes) -> None:
    document = json.loads(signed)
    for field in ("value", "sha256", "key_id"):
        text = document["signature"][field]
        at = signed.index(text.encode())
        for offset in (0, len(text) // 2, len(text) - 3):
            original = signed[at + offset]
            other = b"B" if original != ord("B") else b"C"
            if field != "value":
                other = b"0" if original != ord("0") else b"1"
            data = signed[: at + offset] + other + signed[at + offset + 1 :]
            result = verify_report_bytes(data, key.public_key())
            assert not result.ok, (field, offset)


def test_a_trailing_newline_is_an_alteration(key: Ed25519PrivateKey, signed: bytes) -> None:
    result = verify_report_bytes(signed + b"\n", key.public_key())
    assert not result.ok
    assert result.reason is not None and "not valid JSON" not in result.reason


def test_every_single_byte_change_anywhere_fails(key: Ed25519PrivateKey) -> None:
    """Exhaustive over a small report: each byte in turn replaced by a neighbouring value."""
    small = sample_report("en", SAMPLE_RULES[:1])
    data = signed_report_bytes(small, key)
    public = key.public_key()
    assert verify_report_bytes(data, public).ok
    for at in range(len(data)):
        for delta in (1, -1):
            byte = (data[at] + delta) % 256
            altered = data[:at] + bytes((byte,)) + data[at + 1 :]
            assert not verify_report_bytes(altered, public).ok, f"byte {at} ({data[at - 10 : at + 10]!r})"


def test_a_report_holding_a_number_without_json_form_is_not_signed(key: Ed25519PrivateKey) -> None:
    report = sample_report("en")
    rule = report.rules[0]
    broken = rule.model_copy(update={"assessment": rule.assessment.model_copy(update={"value": float("nan")})})
    with pytest.raises(SigningError, match="has no canonical form: nan has no JSON form"):
        signed_report_bytes(report.model_copy(update={"rules": [broken]}), key)


def test_a_report_signed_by_another_sites_key_fails(key: Ed25519PrivateKey, signed: bytes) -> None:
    other = Ed25519PrivateKey.generate()
    result = verify_report_bytes(signed, other.public_key())
    assert not result.ok
    assert result.reason is not None and "not with the given public key" in result.reason


def test_a_report_of_one_site_signed_under_another_sites_name_fails(tmp_path: Path) -> None:
    keys = SiteKeys(tmp_path)
    keys.generate("site-cq")
    keys.generate("site-wz")
    # site-wz signs a site-cq report with its own (valid) key: the signature is sound, the signer wrong.
    report = sample_report("en", sites=("site-cq",))
    forged = json.loads(signed_report_bytes(report, keys.private("site-wz")))
    assert forged["signature"]["site"] == "site-cq"  # the name comes from the report, not the key
    result = verify_with_keys(signed_report_bytes(report, keys.private("site-wz")), keys)
    assert not result.ok
    assert result.reason is not None and "not with the given public key" in result.reason


def test_a_park_report_is_signed_with_the_parks_key(tmp_path: Path) -> None:
    keys = SiteKeys(tmp_path)
    keys.generate("park-liangjiang")
    report = sample_report("en", scope="park-liangjiang", scope_kind="park", sites=("site-cq", "site-wz"))
    assert report_signer(report) == "park-liangjiang"
    result = verify_with_keys(signed_report_bytes(report, keys.private("park-liangjiang")), keys)
    assert result.ok, result.reason
    assert result.signature is not None and result.signature.site == "park-liangjiang"


def test_keygen_writes_a_private_key_only_the_owner_can_read(tmp_path: Path) -> None:
    keys = SiteKeys(tmp_path / "keys")
    public = keys.generate("site-cq")
    mode = stat.S_IMODE(keys.private_path("site-cq").stat().st_mode)
    assert mode == 0o600
    assert keys.public_path("site-cq").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert keys.private_path("site-cq").read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert key_fingerprint(keys.public("site-cq")) == key_fingerprint(public)
    assert key_fingerprint(keys.private("site-cq").public_key()) == key_fingerprint(public)


def test_keygen_never_overwrites_an_existing_key(tmp_path: Path) -> None:
    keys = SiteKeys(tmp_path)
    keys.generate("site-cq")
    before = keys.private_path("site-cq").read_bytes()
    with pytest.raises(ReportKeyError, match="already exists; keys are never overwritten"):
        keys.generate("site-cq")
    keys.private_path("site-cq").unlink()
    with pytest.raises(ReportKeyError, match=r"site-cq\.pub already exists"):  # a lone public key counts too
        keys.generate("site-cq")
    assert before != b""


def test_a_missing_signing_key_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ReportKeyError, match=r"no signing key for 'site-cq'.*factory report keygen --site site-cq"):
        SiteKeys(tmp_path).private("site-cq")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_signing_key_readable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    keys = SiteKeys(tmp_path)
    keys.generate("site-cq")
    os.chmod(keys.private_path("site-cq"), mode)
    with pytest.raises(ReportKeyError, match=r"accessible to group or others .*chmod 600"):
        keys.private("site-cq")


def test_a_missing_public_key_fails_verification_with_its_path(tmp_path: Path, signed: bytes) -> None:
    result = verify_with_keys(signed, SiteKeys(tmp_path))
    assert not result.ok
    assert result.reason is not None and str(tmp_path / "site-cq.pub") in result.reason


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", ".hidden"])
def test_key_names_cannot_leave_the_keys_directory(tmp_path: Path, name: str) -> None:
    with pytest.raises(ReportKeyError, match="not a usable key name"):
        SiteKeys(tmp_path).private_path(name)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "expected exactly the members"),
        (b'{"report":{}}', "expected exactly the members"),
        (b'{"report":{},"signature":{"value":"x"}}', "signature block must have exactly"),
    ],
)
def test_files_that_are_not_signed_reports_are_named_as_such(key: Ed25519PrivateKey, data: bytes, reason: str) -> None:
    result = verify_report_bytes(data, key.public_key())
    assert not result.ok
    assert result.reason is not None and reason in result.reason
