"""OPC UA security against a real asyncua server: policies, trust lists and users, certificates made in the test.

The agent's certificate comes from ``factory edge cert``'s own function; the server's from asyncua's
generator. The server trusts only the client certificates it is given and, where users are given,
only those users with their passwords (tests/opcua_security_support.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from asyncua import Client, ua
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from core.errors import ConfigError
from core.settings import OpcUaSecurity, OpcUaSource
from core.signals import MachineState
from core.wire import Sample
from edge.opcua_security import (
    POLICIES,
    REFUSED_RETRY_S,
    USER_REFUSED_RETRY_S,
    SecurityNotOffered,
    SessionRefused,
    TrustList,
    UntrustedServerCertificate,
    check_security,
    open_session,
    thumbprint,
)
from edge.opcua_source import OpcUaCollector
from edge.reconnect import Backoff
from factory.edge_cert_cli import ApplicationCertificate, make_application_certificate
from tests.opcua_security_support import (
    EQUIPMENT,
    PROGRAM_NAME,
    SecuredMachine,
    ServerIdentity,
    make_server_identity,
    secured_machine,
)
from tests.servers import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

P = ua.SecurityPolicyType
EVERY_SECURE_ENDPOINT = [
    P.Basic256Sha256_Sign,
    P.Basic256Sha256_SignAndEncrypt,
    P.Aes128Sha256RsaOaep_Sign,
    P.Aes128Sha256RsaOaep_SignAndEncrypt,
    P.Aes256Sha256RsaPss_Sign,
    P.Aes256Sha256RsaPss_SignAndEncrypt,
]
PASSWORD_ENV = "TEST_OPCUA_PASSWORD"
USERS = {"operator": "Kx7-p4ss-for-the-line"}
T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Pki:
    agent: ApplicationCertificate  # ours, with trusted/ and rejected/ beside it
    server: ServerIdentity

    def security(self, policy: str = "Basic256Sha256", mode: str = "SignAndEncrypt", **more: object) -> OpcUaSecurity:
        return OpcUaSecurity.model_validate(
            {
                "policy": policy,
                "mode": mode,
                "certificate": self.agent.certificate_file,
                "private_key": self.agent.key_file,
                "trust_dir": self.agent.trust_dir,
                "username": "operator",
                "password_env": PASSWORD_ENV,
                **more,
            }
        )

    def trust_server(self) -> None:
        shutil.copy(self.server.certificate_file, self.agent.trust_dir / "secured-machine.der")


@pytest.fixture
def pki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pki:
    monkeypatch.setenv(PASSWORD_ENV, USERS["operator"])
    agent = make_application_certificate(
        tmp_path / "edge-pki", application_uri="urn:gw-test:smart-factory:edge", hostnames=[socket.gethostname()]
    )
    return Pki(agent, make_server_identity(tmp_path / "server-pki"))


@pytest.fixture
async def machine(pki: Pki) -> AsyncIterator[SecuredMachine]:
    async with secured_machine(
        free_port(), pki.server, EVERY_SECURE_ENDPOINT, trusted_clients=[pki.agent.certificate_file], users=USERS
    ) as served:
        await served.write_parts(41, T0)
        yield served


class ListSink:
    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def put(self, sample: Sample) -> None:
        self.samples.append(sample)


def source_for(machine: SecuredMachine, security: OpcUaSecurity) -> OpcUaSource:
    return OpcUaSource(
        endpoint=machine.endpoint,
        equipment=EQUIPMENT,
        nodes={"state": f"ns=2;s={EQUIPMENT}.StateCode", "parts_total": f"ns=2;s={EQUIPMENT}.PartsTotal"},
        sampling_interval_ms=50,
        state_map={"1": MachineState.PRODUCING, "4": MachineState.DOWN},
        security=security,
    )


def collector(source: OpcUaSource, sink: ListSink) -> OpcUaCollector:
    return OpcUaCollector(source, sink, backoff=Backoff(0.05, 0.2), request_timeout_s=4)


# --- policies and modes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
@pytest.mark.parametrize("policy", ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"])
async def test_every_policy_and_mode_opens_a_session_with_our_certificate_and_reads(
    pki: Pki, machine: SecuredMachine, policy: str, mode: str
) -> None:
    pki.trust_server()
    client = Client(machine.endpoint, timeout=4)
    await open_session(client, pki.security(policy, mode))
    try:
        assert await client.get_node(machine.parts_total.nodeid).read_value() == 41
        assert client.security_policy.URI == POLICIES[policy].URI
        assert client.security_policy.Mode == getattr(ua.MessageSecurityMode, mode)
    finally:
        await client.disconnect()
    # The server saw our application certificate, the one factory edge cert made.
    own = x509.load_der_x509_certificate(pki.agent.certificate_file.read_bytes())
    assert machine.client_certificates_seen == [own]


async def test_sign_and_encrypt_with_trusted_certificates_delivers_data_through_the_collector(
    pki: Pki, machine: SecuredMachine
) -> None:
    pki.trust_server()
    sink = ListSink()
    async with collector(source_for(machine, pki.security("Aes256_Sha256_RsaPss", "SignAndEncrypt")), sink) as c:
        await wait_until(lambda: len(sink.samples) == 2, "the current state and count over SignAndEncrypt")
        await machine.write_parts(42, T0 + timedelta(seconds=5))
        await machine.write_state(4, T0 + timedelta(seconds=6))
        await wait_until(lambda: len(sink.samples) == 4, "two changes over SignAndEncrypt")
        assert c.counters.connects == 1 and c.link.connected
    readings = [(s.signal, s.value) for s in sink.samples]
    assert sorted(readings[:2]) == [("parts_total", 41), ("state", "PRODUCING")]
    assert sorted(readings[2:4]) == [("parts_total", 42), ("state", "DOWN")]
    assert readings[4:] == [("state", "OFFLINE")]  # the collector stopped listening


@contextlib.asynccontextmanager
async def wire_recorder(target_port: int) -> AsyncIterator[tuple[int, bytearray]]:
    """A TCP relay to ``target_port`` on a port of its own, keeping every byte either way."""
    seen = bytearray()
    relays: set[asyncio.Task[None]] = set()

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                seen.extend(data)
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.close()

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        for task in (
            asyncio.create_task(pipe(client_reader, server_writer)),
            asyncio.create_task(pipe(server_reader, client_writer)),
        ):
            relays.add(task)
            task.add_done_callback(relays.discard)

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()
        for task in list(relays):
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)


@pytest.mark.parametrize(("mode", "readable"), [("Sign", True), ("SignAndEncrypt", False)])
async def test_sign_and_encrypt_hides_the_values_on_the_wire_and_sign_does_not(
    pki: Pki, machine: SecuredMachine, mode: str, readable: bool
) -> None:
    pki.trust_server()
    async with wire_recorder(urlparse(machine.endpoint).port or 0) as (port, wire):
        client = Client(f"opc.tcp://127.0.0.1:{port}/secured/", timeout=4)
        await open_session(client, pki.security("Basic256Sha256", mode))
        try:
            assert await client.get_node(machine.program_name.nodeid).read_value() == PROGRAM_NAME
        finally:
            await client.disconnect()
    assert len(wire) > 1000
    assert (PROGRAM_NAME.encode() in wire) is readable
    # The password never crosses readable: the user token is encrypted with the server's key either way.
    assert USERS["operator"].encode() not in wire


# --- the trust list ----------------------------------------------------------------------------------------


async def test_an_untrusted_server_is_refused_naming_the_file_to_trust_and_taken_once_it_is_trusted(
    pki: Pki, machine: SecuredMachine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge.opcua_source")
    rejected = pki.agent.trust_dir.parent / "rejected" / f"{thumbprint(pki.server.certificate)}.der"
    sink = ListSink()
    async with collector(source_for(machine, pki.security()), sink) as c:
        await wait_until(lambda: c.link.failed_attempts >= 3, "several refused attempts")
        assert c.counters.connects == 0 and sink.samples == []
        assert rejected.read_bytes() == pki.server.certificate_file.read_bytes()  # the server's, as DER
        collector_log = [r.getMessage() for r in caplog.records if r.name == "edge.opcua_source"]
        refusals = [m for m in collector_log if "is not trusted" in m]
        assert len(refusals) == 1, refusals  # said once, however many attempts
        assert f"copy {rejected} into {pki.agent.trust_dir}" in refusals[0]
        assert "application URI urn:smart-factory:test:secured-machine" in refusals[0]
        # Someone checks the certificate and trusts it: the next attempt connects, no restart.
        shutil.copy(rejected, pki.agent.trust_dir)
        await wait_until(lambda: len(sink.samples) == 2, "data once the server is trusted")
        assert c.counters.connects == 1
    # The server never saw a session attempt from us before it was trusted.
    assert len(machine.client_certificates_seen) == 1


async def test_a_server_presenting_another_certificate_than_the_trusted_one_is_refused(
    pki: Pki, machine: SecuredMachine, tmp_path: Path
) -> None:
    impostor = make_server_identity(tmp_path / "impostor", name="impostor")
    shutil.copy(impostor.certificate_file, pki.agent.trust_dir)  # a certificate with the same URI, not the server's
    with pytest.raises(UntrustedServerCertificate) as refused:
        await open_session(Client(machine.endpoint, timeout=4), pki.security())
    assert refused.value.thumbprint == thumbprint(pki.server.certificate)
    assert machine.client_certificates_seen == []


def test_a_certificate_issued_by_a_trusted_ca_is_trusted_and_an_expired_one_is_refused(tmp_path: Path) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plant OPC UA CA")])
    now = datetime.now(UTC)

    def issue(
        name: x509.Name,
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        *,
        ca: bool,
        days: float,
        signer: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = ca_key,
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=10))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )

    ca_certificate = issue(ca_name, ca_key, ca=True, days=365)
    trust_dir = tmp_path / "pki" / "trusted"
    trust_dir.mkdir(parents=True)
    (trust_dir / "plant-ca.pem").write_bytes(ca_certificate.public_bytes(serialization.Encoding.PEM))
    (trust_dir / "notes.pem").write_text("not a certificate")  # ignored, with a warning
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cnc-07")])
    trust = TrustList(trust_dir)

    trust.check(issue(server_name, server_key, ca=False, days=30), "opc.tcp://cnc-07:4840")
    with pytest.raises(UntrustedServerCertificate, match=r"expired on .* the server needs a new one") as expired:
        trust.check(issue(server_name, server_key, ca=False, days=-1), "opc.tcp://cnc-07:4840")
    assert expired.value.rejected_file is None
    forged = issue(server_name, server_key, ca=False, days=30, signer=server_key)  # names the CA, not signed by it
    with pytest.raises(UntrustedServerCertificate, match="is not in the trust list"):
        trust.check(forged, "opc.tcp://cnc-07:4840")


# --- users -------------------------------------------------------------------------------------------


async def test_a_wrong_password_is_refused_with_the_user_and_the_variable_named(
    pki: Pki, machine: SecuredMachine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pki.trust_server()
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    with pytest.raises(SessionRefused) as refused:
        await open_session(Client(machine.endpoint, timeout=4), pki.security())
    assert refused.value.status == ua.StatusCodes.BadUserAccessDenied
    assert refused.value.retry_after_s == USER_REFUSED_RETRY_S  # not every few seconds: accounts get locked
    assert (
        f"refused user 'operator' (BadUserAccessDenied): check the password in the environment variable {PASSWORD_ENV}"
        in str(refused.value)
    )

    # Through the collector: refused, logged once, nothing collected. (A collector that honours
    # retry_after_s makes one attempt in this time; one on its usual backoff several.)
    caplog.set_level(logging.WARNING, logger="edge.opcua_source")
    sink = ListSink()
    async with collector(source_for(machine, pki.security()), sink) as c:
        await wait_until(lambda: c.link.failed_attempts >= 1, "a refused attempt")
        await asyncio.sleep(1.0)
        assert c.counters.connects == 0 and sink.samples == []
        assert c.task is not None and not c.task.done()  # still there, for when the password is mended
    collector_log = [r.getMessage() for r in caplog.records if r.name == "edge.opcua_source"]
    refusals = [m for m in collector_log if "BadUserAccessDenied" in m]
    assert len(refusals) == 1, refusals


async def test_a_user_on_an_unsecured_endpoint_logs_in_and_a_wrong_password_is_refused(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = OpcUaSecurity(username="operator", password_env=PASSWORD_ENV)
    async with secured_machine(free_port(), pki.server, [P.NoSecurity], users=USERS) as served:
        client = Client(served.endpoint, timeout=4)
        await open_session(client, plain)
        await client.disconnect()
        monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
        with pytest.raises(SessionRefused, match="refused user 'operator'"):
            await open_session(Client(served.endpoint, timeout=4), plain)


@pytest.mark.parametrize("password", [None, "", "changeme", "Password"])
async def test_a_password_variable_unset_or_a_placeholder_stops_the_collector_with_a_config_error(
    pki: Pki, machine: SecuredMachine, monkeypatch: pytest.MonkeyPatch, password: str | None
) -> None:
    pki.trust_server()
    if password is None:
        monkeypatch.delenv(PASSWORD_ENV)
    else:
        monkeypatch.setenv(PASSWORD_ENV, password)
    with pytest.raises(ConfigError, match=rf"{PASSWORD_ENV}: security\.password_env: .*OPC UA user 'operator'"):
        check_security(pki.security())  # what factory check-config runs
    # A permanent misconfiguration: the collector stops with it instead of retrying for ever.
    async with collector(source_for(machine, pki.security()), ListSink()) as c:
        assert c.task is not None
        await wait_until(c.task.done, "the collector giving up")
        assert isinstance(c.task.exception(), ConfigError)
    assert machine.client_certificates_seen == []


# --- what the server says about us ------------------------------------------------------------------


async def test_a_server_that_does_not_trust_our_certificate_says_which_file_to_trust(pki: Pki, tmp_path: Path) -> None:
    pki.trust_server()
    async with secured_machine(free_port(), pki.server, EVERY_SECURE_ENDPOINT, users=USERS) as served:
        with pytest.raises(SessionRefused) as refused:
            await open_session(Client(served.endpoint, timeout=4), pki.security())
    assert refused.value.status == ua.StatusCodes.BadCertificateUntrusted
    assert refused.value.retry_after_s == REFUSED_RETRY_S
    assert f"refused our application certificate {pki.agent.certificate_file}" in str(refused.value)
    assert "add it to the server's trusted certificates" in str(refused.value)


async def test_a_server_without_the_policy_says_what_it_offers(pki: Pki) -> None:
    pki.trust_server()
    async with secured_machine(free_port(), pki.server, [P.NoSecurity, P.Basic256Sha256_Sign], users=USERS) as served:
        with pytest.raises(SecurityNotOffered) as refused:
            await open_session(Client(served.endpoint, timeout=4), pki.security("Aes256_Sha256_RsaPss"))
    message = str(refused.value)
    assert "offers no endpoint with policy Aes256_Sha256_RsaPss and mode SignAndEncrypt" in message
    assert "it offers Basic256Sha256/Sign, None/None" in message
