"""``factory edge cert`` and the offline checks of ``security:`` (what check-config and the agent refuse)."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.errors import ConfigError
from core.settings import OpcUaSecurity, load_settings
from edge.opcua_security import check_security, load_application_instance, thumbprint
from factory.cli import main
from factory.edge_cert_cli import CERTIFICATE_FILE, KEY_FILE

PASSWORD_ENV = "TEST_OPCUA_PASSWORD"


def make_cert(out: Path, *extra: str) -> int:
    return main(["edge", "cert", "--out", str(out), *extra])


def security(pki: Path, **more: object) -> OpcUaSecurity:
    return OpcUaSecurity.model_validate(
        {
            "policy": "Basic256Sha256",
            "mode": "SignAndEncrypt",
            "certificate": pki / CERTIFICATE_FILE,
            "private_key": pki / KEY_FILE,
            "trust_dir": pki / "trusted",
            **more,
        }
    )


# --- factory edge cert -----------------------------------------------------------------------------------


def test_edge_cert_writes_an_opc_ua_application_certificate_with_its_uri_and_a_private_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pki"
    args = ["--application-uri", "urn:gw-7:smart-factory:edge", "--hostname", "gw-7.plant.example"]
    assert make_cert(out, *args, "--hostname", "10.0.0.7", "--days", "30") == 0

    certificate = x509.load_der_x509_certificate((out / CERTIFICATE_FILE).read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:gw-7:smart-factory:edge"]
    assert names.get_values_for_type(x509.DNSName) == ["gw-7.plant.example"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages
    key_usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.digital_signature and key_usage.key_encipherment and key_usage.data_encipherment
    lifetime = certificate.not_valid_after_utc - datetime.now(UTC)
    assert timedelta(days=29) < lifetime <= timedelta(days=30)

    key_file = out / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    # Self-signed with that key, SHA-256.
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert certificate.signature_hash_algorithm is not None
    public_key.verify(
        certificate.signature,
        certificate.tbs_certificate_bytes,
        padding.PKCS1v15(),
        certificate.signature_hash_algorithm,
    )
    assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
    assert (out / "trusted").is_dir() and (out / "rejected").is_dir()

    printed = capsys.readouterr().out
    assert f"SHA-1 thumbprint: {thumbprint(certificate)}" in printed
    assert f"trust_dir: {out / 'trusted'}" in printed
    check_security(security(out))  # what the agent will be given passes its checks


def test_edge_cert_keeps_an_existing_certificate_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pki"
    assert make_cert(out, "--hostname", "gw-1") == 0
    first = (out / CERTIFICATE_FILE).read_bytes()
    assert make_cert(out, "--hostname", "gw-1") == 1
    assert f"{out / CERTIFICATE_FILE} exists; keeping it" in capsys.readouterr().err
    assert (out / CERTIFICATE_FILE).read_bytes() == first
    assert make_cert(out, "--hostname", "gw-1", "--force", "--key-bits", "3072") == 0
    assert (out / CERTIFICATE_FILE).read_bytes() != first
    assert stat.S_IMODE((out / KEY_FILE).stat().st_mode) == 0o600
    assert load_application_instance(security(out)).application_uri == "urn:gw-1:smart-factory:edge"


def test_edge_cert_needs_an_output_directory_and_a_uri(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "cert"]) == 2
    assert make_cert(tmp_path / "pki", "--application-uri", "gateway seven") == 1
    assert "is not a URI" in capsys.readouterr().err


# --- the model ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"policy": "Basic256Sha256"}, "policy Basic256Sha256 with mode None"),
        ({"mode": "Sign"}, "policy None with mode Sign"),
        (
            {"policy": "Aes128_Sha256_RsaOaep", "mode": "Sign"},
            "needs certificate, private_key, trust_dir (factory edge cert makes",
        ),
        ({"username": "operator"}, "username and password_env go together"),
        ({"password_env": "OPCUA_PASSWORD"}, "username and password_env go together"),
        ({"username": "operator", "password_env": "lower-case"}, "String should match pattern"),
    ],
)
def test_inconsistent_security_settings_are_refused(fields: dict[str, str], reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        OpcUaSecurity.model_validate(fields)


def test_security_paths_are_relative_to_the_settings_file(tmp_path: Path, example_assets_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text(
        f"assets: {example_assets_path}\n"
        "edge:\n"
        "  id: gw-1\n"
        "  opcua:\n"
        "    - endpoint: opc.tcp://cnc-07:4840\n"
        "      equipment: cnc-07\n"
        "      nodes: {parts_total: 'ns=2;s=Parts'}\n"
        "      security: {policy: Basic256Sha256, mode: Sign, certificate: pki/edge-cert.der,\n"
        "                 private_key: pki/edge-key.pem, trust_dir: pki/trusted}\n"
    )
    settings = load_settings(tmp_path / "settings.yaml", environ={})
    assert settings.edge is not None
    configured = settings.edge.opcua[0].security
    assert configured is not None
    assert configured.certificate == tmp_path / "pki" / "edge-cert.der"
    assert configured.trust_dir == tmp_path / "pki" / "trusted"


# --- the offline checks ---------------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    out = tmp_path / "pki"
    assert make_cert(out, "--hostname", "gw-1") == 0
    return out


def test_a_missing_unreadable_or_broken_file_names_the_file_and_the_field(pki: Path, tmp_path: Path) -> None:
    where = "edge.opcua[0].security"
    missing = f"{tmp_path}/nowhere.der: {where}.certificate: cannot read it: No such file"
    with pytest.raises(ConfigError, match=re.escape(missing)):
        check_security(security(pki, certificate=tmp_path / "nowhere.der"), where)
    (tmp_path / "junk.der").write_bytes(b"\x30\x03junk")
    with pytest.raises(ConfigError, match=r"junk.der: security\.certificate: not a DER or PEM certificate"):
        check_security(security(pki, certificate=tmp_path / "junk.der"))
    (tmp_path / "junk.pem").write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match=r"junk.pem: security\.private_key: not a PEM or DER private key"):
        check_security(security(pki, private_key=tmp_path / "junk.pem"))
    with pytest.raises(ConfigError, match=r"security\.trust_dir: the trust directory does not exist"):
        check_security(security(pki, trust_dir=tmp_path / "no-such-dir"))


def test_a_key_of_another_certificate_an_encrypted_key_or_an_ec_key_is_refused(pki: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert make_cert(other, "--hostname", "gw-2") == 0
    with pytest.raises(ConfigError, match=re.escape(f"does not go with the certificate {pki / CERTIFICATE_FILE}")):
        check_security(security(pki, private_key=other / KEY_FILE))

    key = serialization.load_pem_private_key((pki / KEY_FILE).read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass phrase"),
        )
    )
    with pytest.raises(ConfigError, match="the private key is encrypted; give it unencrypted"):
        check_security(security(pki, private_key=encrypted))

    ec_key = tmp_path / "ec.pem"
    ec_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ConfigError, match="need an RSA key of 2048 to 4096 bits"):
        check_security(security(pki, private_key=ec_key))


def test_a_certificate_without_an_application_uri_or_expired_is_refused(pki: Path, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge")])
    now = datetime.now(UTC)

    def write(path: Path, *, uri: bool, until: datetime) -> Path:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=30))
            .not_valid_after(until)
        )
        if uri:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier("urn:gw-1:edge")]), critical=False
            )
        path.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        return path

    key_file = tmp_path / "key.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    no_uri = write(tmp_path / "no-uri.pem", uri=False, until=now + timedelta(days=30))
    with pytest.raises(ConfigError, match="names no application URI in its subjectAltName"):
        check_security(security(pki, certificate=no_uri, private_key=key_file))
    expired = write(tmp_path / "expired.pem", uri=True, until=now - timedelta(days=1))
    with pytest.raises(ConfigError, match=r"the application certificate expired on .* make a new one"):
        check_security(security(pki, certificate=expired, private_key=key_file))
    good = write(tmp_path / "good.pem", uri=True, until=now + timedelta(days=1))
    check_security(security(pki, certificate=good, private_key=key_file))  # PEM is taken as well as DER


def test_a_private_key_others_can_read_is_taken_with_a_warning(
    pki: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    readable = tmp_path / "readable-key.pem"
    shutil.copy(pki / KEY_FILE, readable)
    os.chmod(readable, 0o644)
    check_security(security(pki, private_key=readable))
    assert any("can be read by other users (mode 644); chmod 600 it" in r.getMessage() for r in caplog.records)


def test_check_config_refuses_an_unset_password_variable(
    pki: Path, tmp_path: Path, example_assets_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        f"assets: {example_assets_path}\n"
        "edge:\n"
        "  id: gw-1\n"
        "  opcua:\n"
        "    - endpoint: opc.tcp://cnc-07:4840\n"
        "      equipment: cnc-01\n"
        "      nodes: {parts_total: 'ns=2;s=Parts'}\n"
        f"      security: {{username: operator, password_env: {PASSWORD_ENV}}}\n"
    )
    assert main(["check-config", "--config", str(settings)]) == 2
    assert (
        f"{PASSWORD_ENV}: edge.opcua[0].security.password_env: the environment variable holding the password "
        "of OPC UA user 'operator' is not set"
    ) in capsys.readouterr().err
    monkeypatch.setenv(PASSWORD_ENV, "a-real-one")
    assert main(["check-config", "--config", str(settings)]) == 0
