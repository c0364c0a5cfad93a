"""The edge's uplink over TLS with a user name and password: a real Mosquitto, certificates made in the test.

Mosquitto runs with the shipped ACL and a password file made with mosquitto_passwd, on two TLS
listeners: one with passwords only, one that also requires a client certificate of the platform
CA. The whole secured path runs end to end: an asyncua server with SignAndEncrypt and a user, the
edge agent, and the TLS uplink, read back by a TLS client that signs in as ingest.
(tests/test_broker_tls.py covers certificates as the identity, use_identity_as_username.)
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asyncua import ua

from core.errors import BrokerTlsError
from core.mqtt import mqtt_client
from core.settings import BrokerSettings, BrokerTls, EdgeSettings, OpcUaSecurity, OpcUaSource, UplinkSettings
from core.signals import MachineState
from core.wire import DecodedBatch, Sample
from edge.agent import EdgeAgent
from edge.buffer import SampleBuffer
from edge.forwarder import Forwarder
from edge.reconnect import Backoff
from factory.edge_cert_cli import make_application_certificate
from factory.runtime import serve_until_stopped
from tests.ingest_support import REPO, bounded
from tests.opcua_security_support import EQUIPMENT, make_server_identity, secured_machine
from tests.servers import free_port, mosquitto_on, mosquitto_password_file
from tests.tls_support import CertificateAuthority
from tests.uplink_support import decoded_batches
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

EDGE = "gw-tls"
PASSWORDS = {EDGE: "edge-Qw8-uplink", "ingest": "ingest-Zt3-reader"}
OPCUA_PASSWORD_ENV = "TEST_UPLINK_OPCUA_PASSWORD"
OPCUA_USERS = {"operator": "line-4-operator-pw"}
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


@dataclass(frozen=True)
class PasswordTlsBroker:
    password_port: int  # TLS, user name and password
    certificate_port: int  # TLS, user name and password, and a client certificate of the CA
    ca: CertificateAuthority
    elsewhere: CertificateAuthority  # a CA the broker's certificate does not chain to

    def settings(
        self, user: str, *, password: str | None = None, ca_file: Path | None = None, client_certificate: bool = False
    ) -> BrokerSettings:
        cert = (self.ca.directory / f"{user}.crt", self.ca.directory / f"{user}.key") if client_certificate else None
        return BrokerSettings.model_validate(
            {
                "host": "127.0.0.1",
                "port": self.certificate_port if client_certificate else self.password_port,
                "username": user,
                "password": password or PASSWORDS[user],
                "tls": BrokerTls(
                    ca_file=ca_file or self.ca.ca_file,
                    cert_file=cert[0] if cert else None,
                    key_file=cert[1] if cert else None,
                ),
            }
        )


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PasswordTlsBroker]:
    workdir = tmp_path_factory.mktemp("mosquitto-password-tls")
    ca = CertificateAuthority(workdir / "pki", "platform")
    server = ca.issue("broker", hosts=("127.0.0.1", "localhost"), server=True)
    ca.issue(EDGE)
    elsewhere = CertificateAuthority(workdir / "elsewhere", "elsewhere")
    passwd = mosquitto_password_file(workdir / "passwd", PASSWORDS)
    shutil.copy(REPO / "deploy" / "mosquitto" / "acl", workdir / "acl")
    password_port, certificate_port = free_port(), free_port()
    tls = f"cafile {ca.ca_file}\ncertfile {server.cert_file}\nkeyfile {server.key_file}\ntls_version tlsv1.2\n"
    conf = (
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        f"password_file {passwd}\n"
        f"acl_file {workdir / 'acl'}\n"
        "persistence false\n"
        "log_dest stderr\n"
        f"listener {password_port} 127.0.0.1\n{tls}require_certificate false\n"
        f"listener {certificate_port} 127.0.0.1\n{tls}require_certificate true\n"
    )
    with mosquitto_on(workdir, conf, password_port, certificate_port):
        yield PasswordTlsBroker(password_port, certificate_port, ca, elsewhere)


@contextlib.asynccontextmanager
async def observe_as_ingest(broker: PasswordTlsBroker) -> AsyncIterator[list[DecodedBatch]]:
    """Every batch on the edge's uplink topic, read over TLS as the ingest user."""
    async with mqtt_client(broker.settings("ingest"), identifier="ingest-observer", timeout_s=5) as client:
        await client.subscribe(UplinkSettings().topic(EDGE), qos=1)
        async with decoded_batches(client) as batches:
            yield batches


@pytest.mark.parametrize("client_certificate", [False, True], ids=["password", "password-and-certificate"])
async def test_a_secured_machine_reaches_the_platform_over_the_tls_uplink_with_a_password(
    broker: PasswordTlsBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client_certificate: bool
) -> None:
    monkeypatch.setenv(OPCUA_PASSWORD_ENV, OPCUA_USERS["operator"])
    agent_pki = make_application_certificate(
        tmp_path / "edge-pki", application_uri=f"urn:{EDGE}:smart-factory:edge", hostnames=[socket.gethostname()]
    )
    server_identity = make_server_identity(tmp_path / "server-pki")
    shutil.copy(server_identity.certificate_file, agent_pki.trust_dir)
    security = OpcUaSecurity(
        policy="Basic256Sha256",
        mode="SignAndEncrypt",
        certificate=agent_pki.certificate_file,
        private_key=agent_pki.key_file,
        trust_dir=agent_pki.trust_dir,
        username="operator",
        password_env=OPCUA_PASSWORD_ENV,
    )
    async with secured_machine(
        free_port(),
        server_identity,
        [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt],
        trusted_clients=[agent_pki.certificate_file],
        users=OPCUA_USERS,
    ) as machine:
        await machine.write_parts(100, T0)
        source = OpcUaSource(
            endpoint=machine.endpoint,
            equipment=EQUIPMENT,
            nodes={"state": f"ns=2;s={EQUIPMENT}.StateCode", "parts_total": f"ns=2;s={EQUIPMENT}.PartsTotal"},
            sampling_interval_ms=50,
            state_map={"1": MachineState.PRODUCING},
            security=security,
        )
        edge = EdgeSettings(id=EDGE, buffer_path=tmp_path / "buffer.sqlite", flush_interval_s=0.05, opcua=[source])
        uplink = broker.settings(EDGE, client_certificate=client_certificate)
        async with (
            bounded(60, "a secured machine's values over the TLS uplink"),
            observe_as_ingest(broker) as batches,
            EdgeAgent(edge, uplink, UplinkSettings()) as agent,
        ):
            await wait_until(lambda: sum(len(b.samples) for b in batches) >= 2, "the first two samples uplinked")
            await machine.write_parts(101, T0 + timedelta(seconds=1))
            await wait_until(lambda: sum(len(b.samples) for b in batches) >= 3, "the change uplinked")
            assert agent.forwarder is not None and agent.forwarder.counters.connects == 1
            assert agent.stats()["buffered"] == 0  # acknowledged by the broker over TLS
    received = [(s.signal, s.value, s.ts) for b in sorted(batches, key=lambda b: b.seq) for s in b.samples]
    assert [r for r in received if r[0] == "parts_total"] == [
        ("parts_total", 100, T0),
        ("parts_total", 101, T0 + timedelta(seconds=1)),
    ]
    assert all(not b.rejected and b.edge == EDGE for b in batches)


async def test_an_uplink_that_trusts_another_ca_is_refused_and_the_edge_stops_saying_why(
    broker: PasswordTlsBroker, tmp_path: Path
) -> None:
    uplink = broker.settings(EDGE, ca_file=broker.elsewhere.ca_file)
    agent = EdgeAgent(EdgeSettings(id=EDGE, buffer_path=tmp_path / "buffer.sqlite"), uplink, UplinkSettings())
    with pytest.raises(BrokerTlsError) as refused:
        async with bounded(15, "the edge giving up on a broker it cannot trust"):
            await serve_until_stopped(agent)  # what `factory edge` runs
    message = str(refused.value)
    assert f"TLS handshake with MQTT broker 127.0.0.1:{broker.password_port} failed" in message
    assert f"not signed by a CA in tls.ca_file {broker.elsewhere.ca_file}" in message
    assert agent.forwarder is None or agent.forwarder.counters.connects == 0


async def test_a_wrong_uplink_password_is_refused_logged_once_and_nothing_is_lost(
    broker: PasswordTlsBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge.forwarder")
    with SampleBuffer(tmp_path / "buffer.sqlite", 1000) as buffer:
        buffer.append([Sample(equipment=EQUIPMENT, signal="parts_total", ts=T0, value=7)])
        uplink = Forwarder(
            EDGE,
            buffer,
            broker.settings(EDGE, password="not-the-password"),
            UplinkSettings(),
            publish_timeout_s=2,
            backoff=Backoff(0.05, 0.1),
        )
        async with bounded(30, "refused connection attempts"), uplink:
            await wait_until(lambda: uplink.link.failed_attempts >= 3, "several refused attempts")
            assert uplink.counters.connects == 0
        assert buffer.count == 1  # kept until a broker takes it
    refusals = [r.getMessage() for r in caplog.records if r.name == "edge.forwarder"]
    assert len(refusals) == 1 and "not authori" in refusals[0].lower(), refusals
