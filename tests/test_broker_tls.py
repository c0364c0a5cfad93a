"""TLS to the broker: a real Mosquitto 2.0 TLS listener on loopback, certificates made in the test.

Mosquitto runs on the shipped deploy/mosquitto/mosquitto-tls.conf (listener and paths replaced) with
the shipped ACL: each client is known by its certificate's CN (use_identity_as_username). One CA
signs the broker's certificate (127.0.0.1 and localhost) and one client certificate per edge and for
ingest; a second listener shows a certificate made out to another host, and a second CA stands for
a broker the client does not trust.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.assets import AssetModel
from core.errors import BrokerTlsError, StartupError
from core.mqtt import mqtt_client
from core.settings import BrokerSettings, BrokerTls, EdgeSettings, UplinkSettings
from core.stores.sqlite import SqliteStore
from core.wire import Sample, encode_batch
from edge.agent import EdgeAgent
from edge.buffer import SampleBuffer
from edge.forwarder import Forwarder
from edge.reconnect import Backoff
from factory.runtime import serve_until_stopped
from ingest import IngestService
from tests.ingest_support import GATEWAY_ASSETS, asset_model, bounded, shipped_topic_ingest_settings, started
from tests.servers import free_port, mosquitto_on, shipped_mosquitto_conf
from tests.tls_support import CertificateAuthority
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
WINDOW = (NOW - timedelta(days=1), NOW + timedelta(days=1))


@dataclass(frozen=True)
class TlsBroker:
    port: int  # the shipped listener: certificate for 127.0.0.1 and localhost
    other_host_port: int  # a second listener whose certificate names another host
    ca: CertificateAuthority
    elsewhere: CertificateAuthority  # a CA the broker does not know

    def settings(self, identity: str | None, *, ca_file: Path | None = None, port: int | None = None) -> BrokerSettings:
        """Broker settings for a client with the certificate of ``identity`` (None: no certificate)."""
        cert = (self.ca.directory / f"{identity}.crt", self.ca.directory / f"{identity}.key") if identity else None
        tls = BrokerTls(
            ca_file=ca_file or self.ca.ca_file,
            cert_file=cert[0] if cert else None,
            key_file=cert[1] if cert else None,
        )
        return BrokerSettings(host="127.0.0.1", port=port or self.port, tls=tls)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    workdir = tmp_path_factory.mktemp("mosquitto-tls")
    ca = CertificateAuthority(workdir / "pki", "platform")
    broker = ca.issue("broker", hosts=("127.0.0.1", "localhost"), server=True)
    misnamed = ca.issue("broker-elsewhere", hosts=("broker.elsewhere.example",), server=True)
    for identity in ("ingest", "gw-a", "gw-b"):
        ca.issue(identity)
    elsewhere = CertificateAuthority(workdir / "elsewhere", "elsewhere")
    elsewhere.issue("gw-a")  # a certificate with the right name from the wrong CA

    port, other_host_port = free_port(), free_port()
    conf = shipped_mosquitto_conf(
        workdir,
        "mosquitto-tls.conf",
        8883,
        port,
        {
            "/mosquitto/config/certs/ca.crt": ca.ca_file,
            "/mosquitto/config/certs/broker.crt": broker.cert_file,
            "/mosquitto/config/certs/broker.key": broker.key_file,
        },
    )
    assert "use_identity_as_username" in conf
    conf += (
        f"listener {other_host_port} 127.0.0.1\n"
        f"cafile {ca.ca_file}\ncertfile {misnamed.cert_file}\nkeyfile {misnamed.key_file}\n"
        "require_certificate true\nuse_identity_as_username true\n"
    )
    with mosquitto_on(workdir, conf, port, other_host_port):
        yield TlsBroker(port, other_host_port, ca, elsewhere)


@pytest.fixture
def assets(tmp_path: Path) -> AssetModel:
    return asset_model(tmp_path / "assets.yaml", GATEWAY_ASSETS)


def sample(equipment: str, value: int) -> Sample:
    return Sample(equipment=equipment, signal="parts_total", ts=NOW - timedelta(seconds=value), value=value)


async def test_ingest_and_an_edge_exchange_a_batch_over_tls_each_known_by_its_certificate(
    tls_broker: TlsBroker, tmp_path: Path, assets: AssetModel
) -> None:
    settings = shipped_topic_ingest_settings(tmp_path, tls_broker.settings("ingest"), assets)
    store = SqliteStore(tmp_path / "store.sqlite")
    try:
        with SampleBuffer(tmp_path / "edge-buffer.sqlite", 1000) as buffer:
            async with (
                bounded(30, "a batch from the edge to ingest over TLS"),
                IngestService(settings, store, assets) as service,
                Forwarder("gw-a", buffer, tls_broker.settings("gw-a"), settings.uplink) as forwarder,
            ):
                await started(service)
                buffer.append([sample("cnc-a1", n) for n in (1, 2, 3)])
                forwarder.notify()
                await wait_until(lambda: service.stats()["points_written"] == 3, "three points written")
                await wait_until(lambda: service.stats()["acks"] == 1, "the batch acknowledged")
                assert buffer.count == 0  # the broker acknowledged it over TLS
                assert forwarder.counters.connects == 1
        frame = await store.read("part_counter", *WINDOW)
    finally:
        await store.close()
    assert sorted(zip(frame["equipment"], frame["value"], strict=True)) == [("cnc-a1", 1), ("cnc-a1", 2), ("cnc-a1", 3)]


async def test_a_client_that_trusts_another_ca_is_refused_with_a_clear_message(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    broker = tls_broker.settings("gw-a", ca_file=tls_broker.elsewhere.ca_file)
    with pytest.raises(BrokerTlsError) as refused:
        async with mqtt_client(broker, identifier="gw-a-elsewhere", timeout_s=5):
            pass
    message = str(refused.value)
    assert f"TLS handshake with MQTT broker 127.0.0.1:{tls_broker.port} failed" in message
    assert f"not signed by a CA in tls.ca_file {tls_broker.elsewhere.ca_file}" in message

    # `factory edge` stops with that error instead of its uplink reconnecting forever.
    edge = EdgeSettings(id="gw-a", buffer_path=tmp_path / "edge-buffer.sqlite")
    agent = EdgeAgent(edge, broker, UplinkSettings())
    with pytest.raises(BrokerTlsError, match=r"not signed by a CA in tls\.ca_file"):
        async with bounded(15, "the edge giving up"):
            await serve_until_stopped(agent)
    assert agent.forwarder is None or agent.forwarder.counters.connects == 0


async def test_ingest_stops_with_the_reason_when_the_certificate_names_another_host(
    tls_broker: TlsBroker, tmp_path: Path, assets: AssetModel
) -> None:
    broker = tls_broker.settings("ingest", port=tls_broker.other_host_port)
    store = SqliteStore(tmp_path / "store.sqlite")
    try:
        service = IngestService(shipped_topic_ingest_settings(tmp_path, broker, assets), store, assets)
        with pytest.raises(BrokerTlsError) as refused:
            async with bounded(15, "ingest giving up on a misnamed broker"):
                await serve_until_stopped(service)  # what `factory ingest` runs
    finally:
        await store.close()
    message = str(refused.value)
    assert "is not valid for this host (broker.host)" in message
    assert "127.0.0.1" in message


async def test_with_a_certificate_identity_the_acl_lets_an_edge_publish_only_on_its_own_topic(
    tls_broker: TlsBroker, tmp_path: Path, assets: AssetModel
) -> None:
    settings = shipped_topic_ingest_settings(tmp_path, tls_broker.settings("ingest"), assets)
    store = SqliteStore(tmp_path / "store.sqlite")
    try:
        async with (
            bounded(30, "edges publishing through the ACL by certificate"),
            IngestService(settings, store, assets) as service,
            mqtt_client(tls_broker.settings("gw-a"), identifier="gw-a-acl", timeout_s=5) as gw_a,
            mqtt_client(tls_broker.settings("gw-b"), identifier="gw-b-acl", timeout_s=5) as gw_b,
        ):
            await started(service)
            # The broker acknowledges what the ACL drops (MQTT 3.1.1 has no way to say no) and drops it.
            await gw_a.publish("factory/uplink/gw-b", encode_batch("gw-b", 0, [sample("cnc-b-on-a", 1)]), qos=1)
            await gw_b.publish("factory/uplink/gw-b", encode_batch("gw-b", 0, [sample("cnc-b-on-a", 2)]), qos=1)
            await gw_a.publish("factory/uplink/gw-a", encode_batch("gw-a", 0, [sample("cnc-a1", 3)]), qos=1)
            await wait_until(lambda: service.stats()["points_written"] == 2, "the two batches on own topics")
            await wait_until(lambda: service.stats()["acks"] == 2, "both acknowledged")
            assert service.stats()["messages"] == 2  # gw-a's batch on gw-b's topic never reached ingest
        frame = await store.read("part_counter", *WINDOW)
    finally:
        await store.close()
    assert sorted(zip(frame["equipment"], frame["value"], strict=True)) == [("cnc-a1", 3), ("cnc-b-on-a", 2)]


async def test_a_client_without_a_certificate_of_the_platform_ca_is_refused_with_a_clear_message(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    elsewhere = tls_broker.elsewhere.directory
    for tls, reason in (
        (BrokerTls(ca_file=tls_broker.ca.ca_file), "it asks for a client certificate (tls.cert_file, tls.key_file)"),
        (
            BrokerTls(ca_file=tls_broker.ca.ca_file, cert_file=elsewhere / "gw-a.crt", key_file=elsewhere / "gw-a.key"),
            f"refused our client certificate tls.cert_file {elsewhere / 'gw-a.crt'} (tlsv1 alert unknown ca)",
        ),
    ):
        broker = BrokerSettings(host="127.0.0.1", port=tls_broker.port, tls=tls)
        # Through the uplink's reconnecting loop: with TLS 1.3 the broker refuses a certificate after
        # the handshake, and now and then (about 1 in 50 on loopback) its alert is lost to the closing
        # connection, which then reads as an EOF and is retried; the next attempt hears the alert.
        with SampleBuffer(tmp_path / f"buffer-{uuid.uuid4().hex[:6]}.sqlite", 1000) as buffer:
            uplink = Forwarder(
                "gw-a", buffer, broker, UplinkSettings(), publish_timeout_s=2, backoff=Backoff(0.05, 0.1)
            )
            async with bounded(30, "the uplink giving up"), uplink:
                assert uplink.task is not None
                await asyncio.wait({uplink.task})
                refused = uplink.task.exception()
        assert isinstance(refused, BrokerTlsError) and reason in str(refused), refused
        assert uplink.counters.connects == 0


async def test_insecure_skips_verification_and_says_so(tls_broker: TlsBroker, caplog: pytest.LogCaptureFixture) -> None:
    ca = tls_broker.ca.directory
    tls = BrokerTls(ca_file=None, cert_file=ca / "gw-a.crt", key_file=ca / "gw-a.key", insecure=True)
    broker = BrokerSettings(host="127.0.0.1", port=tls_broker.other_host_port, tls=tls)
    with caplog.at_level(logging.WARNING, logger="core.mqtt"):
        async with mqtt_client(broker, identifier="gw-a-insecure", timeout_s=5):
            pass
    assert any("is not checked" in r.getMessage() for r in caplog.records)


async def test_the_demo_on_a_real_tls_broker_checks_it_at_start(tls_broker: TlsBroker) -> None:
    from factory.demo import _require_broker

    await _require_broker(tls_broker.settings("gw-a"))
    with pytest.raises(StartupError, match=r"TLS handshake with MQTT broker .* not signed by a CA in tls\.ca_file"):
        await _require_broker(tls_broker.settings("gw-a", ca_file=tls_broker.elsewhere.ca_file))
