"""broker.tls read and checked before any connection: files named when they cannot be used, paths, defaults."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.assets import load_asset_model
from core.errors import ConfigError
from core.mqtt import check_broker, tls_context
from core.settings import BrokerSettings, BrokerTls, IngestSettings, Settings, load_settings
from core.stores.sqlite import SqliteStore
from ingest import IngestService
from tests.tls_support import CertificateAuthority


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    ca = CertificateAuthority(tmp_path_factory.mktemp("pki"), "platform")
    ca.issue("gw-a")
    ca.issue("gw-b")
    ca.issue("gw-locked", key_password=b"a pass phrase")
    return ca


def broker(**tls: Path | bool | str | None) -> BrokerSettings:
    return BrokerSettings(host="127.0.0.1", port=8883, tls=BrokerTls.model_validate(tls))


def test_the_context_verifies_the_broker_and_its_host_name_and_takes_nothing_older_than_tls_1_2(
    ca: CertificateAuthority,
) -> None:
    d = ca.directory
    context = tls_context(broker(ca_file=ca.ca_file, cert_file=d / "gw-a.crt", key_file=d / "gw-a.key"))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "platform test CA"),),)]
    assert tls_context(broker(ca_file=ca.ca_file, min_version="1.3")).minimum_version == ssl.TLSVersion.TLSv1_3


def test_a_missing_ca_file_is_named_with_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.crt"
    with pytest.raises(ConfigError) as refused:
        check_broker(broker(ca_file=missing))
    assert str(refused.value) == f"{missing}: tls.ca_file: cannot read it: No such file or directory"


def test_a_ca_file_without_a_certificate_is_named(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.crt"
    not_pem.write_text("this is not a certificate\n")
    with pytest.raises(ConfigError, match=r"ca\.crt: tls\.ca_file: no PEM CA certificate in it"):
        check_broker(broker(ca_file=not_pem))


def test_a_broken_client_certificate_or_key_is_named(ca: CertificateAuthority, tmp_path: Path) -> None:
    d = ca.directory
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    cases = {
        (garbage, d / "gw-a.key"): f"{garbage}: tls.cert_file: not a PEM certificate",
        (d / "gw-a.crt", garbage): f"{garbage}: tls.key_file: not a PEM private key",
        (d / "gw-a.crt", tmp_path / "gone.key"): f"{tmp_path / 'gone.key'}: tls.key_file: cannot read it",
        (d / "gw-a.crt", d / "gw-b.key"): f"{d / 'gw-b.key'}: tls.key_file: does not go with the certificate",
        (d / "gw-locked.crt", d / "gw-locked.key"): f"{d / 'gw-locked.key'}: tls.key_file: the private key is encrypt",
    }
    for (cert_file, key_file), message in cases.items():
        with pytest.raises(ConfigError) as refused:
            check_broker(broker(ca_file=ca.ca_file, cert_file=cert_file, key_file=key_file))
        assert str(refused.value).startswith(message), str(refused.value)


def test_a_client_certificate_needs_its_key() -> None:
    with pytest.raises(ValidationError, match="cert_file and key_file go together"):
        BrokerTls(cert_file=Path("gw-a.crt"))


def test_ingest_does_not_start_with_a_tls_file_it_cannot_use(tmp_path: Path, example_assets_path: Path) -> None:
    settings = Settings(
        assets=example_assets_path,
        broker=broker(ca_file=tmp_path / "missing-ca.crt"),
        ingest=IngestSettings(dead_letter_path=tmp_path / "dead-letters.sqlite"),
    )
    with pytest.raises(ConfigError, match=r"missing-ca\.crt: tls\.ca_file: cannot read it"):
        IngestService(settings, SqliteStore(tmp_path / "store.sqlite"), load_asset_model(example_assets_path))


def test_tls_paths_in_the_settings_file_are_relative_to_it(tmp_path: Path, example_assets_path: Path) -> None:
    path = tmp_path / "factory.yaml"
    path.write_text(
        f"assets: {example_assets_path}\n"
        "broker:\n  port: 8883\n  tls:\n    ca_file: pki/ca.crt\n    cert_file: pki/gw-a.crt\n"
        "    key_file: pki/gw-a.key\n    min_version: 1.3\n"
        "edge:\n  id: gw-a\n  meter_broker:\n    host: meters.local\n    tls: {ca_file: pki/shop-ca.crt}\n"
    )
    settings = load_settings(path, environ={"FACTORY__BROKER__TLS__INSECURE": "false"})
    tls = settings.broker.tls
    assert tls is not None and settings.edge is not None and settings.edge.meter_broker is not None
    assert (tls.ca_file, tls.cert_file, tls.key_file) == (
        tmp_path / "pki" / "ca.crt",
        tmp_path / "pki" / "gw-a.crt",
        tmp_path / "pki" / "gw-a.key",
    )
    assert tls.min_version == "1.3" and not tls.insecure
    meter_tls = settings.edge.meter_broker.tls
    assert meter_tls is not None and meter_tls.ca_file == tmp_path / "pki" / "shop-ca.crt"
