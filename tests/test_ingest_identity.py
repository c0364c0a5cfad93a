"""Edge identity: the broker lets an edge publish only on its own topic, ingest trusts only the topic.

A real Mosquitto runs on the shipped files (deploy/mosquitto/mosquitto-edge-identity.conf and acl,
with its listener and paths replaced) and a password file made with mosquitto_passwd: one user per
edge and one for ingest. A real IngestService reads with its own credential into SQLite.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from pydantic import SecretStr

from core.assets import AssetModel
from core.settings import BrokerSettings, Settings
from core.stores.sqlite import SqliteStore
from core.wire import format_ts
from ingest import IngestService
from tests.ingest_support import GATEWAY_ASSETS, asset_model, bounded, shipped_topic_ingest_settings, started
from tests.servers import free_port, mosquitto_on, mosquitto_password_file, shipped_mosquitto_conf
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

PASSWORDS = {"ingest": uuid.uuid4().hex, "gw-a": uuid.uuid4().hex, "gw-b": uuid.uuid4().hex}
NOW = datetime.now(UTC).replace(microsecond=0)
WINDOW = (NOW - timedelta(days=1), NOW + timedelta(days=1))


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Mosquitto on the shipped edge-identity config; yields its port."""
    workdir = tmp_path_factory.mktemp("mosquitto-acl")
    passwd = mosquitto_password_file(workdir / "passwd", PASSWORDS)
    port = free_port()
    conf = shipped_mosquitto_conf(
        workdir, "mosquitto-edge-identity.conf", 1883, port, {"/mosquitto/config/passwd": passwd}
    )
    assert "acl_file" in conf
    with mosquitto_on(workdir, conf, port):
        yield port


@contextlib.asynccontextmanager
async def edge_client(port: int, user: str, password: str | None = None) -> AsyncIterator[aiomqtt.Client]:
    identifier = f"{user}-{uuid.uuid4().hex[:6]}"
    async with aiomqtt.Client(
        "127.0.0.1", port, username=user, password=password or PASSWORDS[user], identifier=identifier, timeout=5
    ) as client:
        yield client


def batch(edge: str, seq: int, equipment: str, value: int) -> bytes:
    sample = {"equipment": equipment, "signal": "parts_total", "ts": format_ts(NOW - timedelta(seconds=value)),
              "value": value}  # fmt: skip
    return json.dumps({"v": 1, "edge": edge, "seq": seq, "samples": [sample]}).encode()


@pytest.fixture
def assets(tmp_path: Path) -> AssetModel:
    return asset_model(tmp_path / "assets.yaml", GATEWAY_ASSETS)


def settings_for(tmp_path: Path, port: int, assets: AssetModel, **ingest: Any) -> Settings:
    broker = BrokerSettings(host="127.0.0.1", port=port, username="ingest", password=SecretStr(PASSWORDS["ingest"]))
    return shipped_topic_ingest_settings(tmp_path, broker, assets, **ingest)


async def test_the_broker_lets_an_edge_publish_only_on_its_own_topic_and_ingest_trusts_only_the_topic(
    acl_broker: int, tmp_path: Path, assets: AssetModel
) -> None:
    settings = settings_for(tmp_path, acl_broker, assets)
    store = SqliteStore(tmp_path / "store.sqlite")
    try:
        async with (
            bounded(60, "edges publishing through the ACL"),
            IngestService(settings, store, assets) as service,
            edge_client(acl_broker, "gw-a") as gw_a,
            edge_client(acl_broker, "gw-b") as gw_b,
        ):
            await started(service)
            await gw_a.publish("factory/uplink/gw-a", batch("gw-a", 0, "cnc-a1", 1), qos=1)  # stored
            await gw_a.publish("factory/uplink/gw-b", batch("gw-b", 0, "cnc-b-on-a", 2), qos=1)  # the ACL drops it
            await gw_a.publish("factory/uplink/gw-a", batch("gw-b", 1, "cnc-b-on-a", 3), qos=1)  # names gw-b
            await gw_a.publish("factory/uplink/gw-a", batch("gw-a", 2, "cnc-b-on-a", 4), qos=1)  # gw-b's machine
            await gw_a.publish("factory/uplink/gw-a", batch("gw-a", 3, "cnc-open", 5), qos=1)  # open to any edge
            await gw_b.publish("factory/uplink/gw-b", batch("gw-b", 0, "cnc-b-on-a", 6), qos=1)  # stored
            await gw_b.publish("factory/uplink/gw-b", batch("gw-b", 1, "cnc-a1", 7), qos=1)  # gw-a's line
            await wait_until(lambda: service.stats()["acks"] == 6, "six messages through the ACL handled")
            await gw_a.publish("factory/uplink/gw-b", batch("gw-b", 2, "cnc-a1", 8), qos=1)  # dropped again
            await gw_a.publish("factory/uplink/gw-a", batch("gw-a", 0, "cnc-a1", 1), qos=1)  # resent: duplicate
            await wait_until(lambda: service.stats()["messages"] == 7, "the resent batch")
            await wait_until(lambda: service.stats()["acks"] == 7, "the resent batch acknowledged")
            stats = service.stats()
            letters = list(reversed(await service.dead_letters.list()))
        frame = await store.read("part_counter", *WINDOW)
    finally:
        await store.close()

    stored = sorted(zip(frame["equipment"], frame["value"], strict=True))
    assert stored == [("cnc-a1", 1), ("cnc-b-on-a", 6), ("cnc-open", 5)]
    assert (stats["messages"], stats["refused_batches"], stats["duplicates"], stats["points_written"]) == (7, 1, 1, 3)
    not_yours = "samples[0].equipment: {!r} is reported by gateway {!r} in the asset model, not by edge {!r}"
    assert [(d.edge, d.seq, d.reason) for d in letters] == [
        ("gw-a", 1, "edge: the payload names edge 'gw-b' but came on the uplink topic of edge 'gw-a'"),
        ("gw-a", 2, not_yours.format("cnc-b-on-a", "gw-b", "gw-a")),
        ("gw-b", 1, not_yours.format("cnc-a1", "gw-a", "gw-b")),
    ]


async def test_without_the_right_password_nobody_connects_and_ingest_cannot_publish_uplink_data(
    acl_broker: int, tmp_path: Path, assets: AssetModel
) -> None:
    for user, password in (("gw-a", "wrong-password"), ("nobody", "x")):
        with pytest.raises(aiomqtt.MqttCodeError, match=r"Not authorized|Bad user name or password"):
            async with edge_client(acl_broker, user, password):
                pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", acl_broker, identifier="anonymous", timeout=5):
            pass

    settings = settings_for(tmp_path, acl_broker, assets)
    store = SqliteStore(tmp_path / "store.sqlite")
    try:
        async with (
            bounded(30, "ingest's own credential publishing"),
            IngestService(settings, store, assets) as service,
            edge_client(acl_broker, "ingest") as ingest_credential,
        ):
            await started(service)
            await ingest_credential.publish("factory/uplink/gw-a", batch("gw-a", 0, "cnc-a1", 1), qos=1)
            async with edge_client(acl_broker, "gw-a") as gw_a:
                await gw_a.publish("factory/uplink/gw-a", batch("gw-a", 1, "cnc-a1", 2), qos=1)
            await wait_until(lambda: service.stats()["acks"] >= 1, "gw-a's own batch")
            await wait_until(lambda: service.stats()["points_written"] == 1, "gw-a's own batch written")
            assert service.stats()["messages"] == 1  # the batch published with ingest's credential was dropped
    finally:
        await store.close()


async def test_the_acl_lets_ingest_read_through_a_shared_subscription_and_only_ingest_report_to_the_group(
    acl_broker: int, tmp_path: Path, assets: AssetModel
) -> None:
    timing = {"sequence_report_interval_s": 0.1, "sequence_settle_s": 0.5}
    settings = settings_for(tmp_path / "a", acl_broker, assets, shared_group="ingest", mqtt_protocol="5", **timing)
    other = settings_for(tmp_path / "b", acl_broker, assets, shared_group="ingest", mqtt_protocol="5", **timing)
    group_topic = settings.ingest.group_topic()
    store = SqliteStore(tmp_path / "store.sqlite")
    try:
        async with (
            bounded(30, "ingest reading $share/ingest/factory/uplink/+ through the ACL"),
            IngestService(settings, store, assets) as service,
            IngestService(other, store, assets) as second,
            edge_client(acl_broker, "gw-a") as gw_a,
        ):
            await started(service)
            await started(second)
            # An edge forging a report (to hide a gap) is dropped by the ACL: nobody hears it.
            forged = b'{"v":1,"instance":"forged","edges":{"gw-a":[[0,100]]}}'
            await gw_a.publish(f"{group_topic}/forged", forged, qos=1)
            for seq in (0, 1, 3):
                await gw_a.publish("factory/uplink/gw-a", batch("gw-a", seq, "cnc-a1", seq + 1), qos=1)
            both = (service, second)
            await wait_until(lambda: sum(s.stats()["points_written"] for s in both) == 3, "gw-a's batches")
            await wait_until(lambda: sum(s.stats()["seq_gaps"] for s in both) == 1, "the gap, through the ACL")
            assert sum(s.stats()["seq_reports"] for s in both) > 0  # the instances hear each other
            assert sum(s.stats()["seq_reports_refused"] for s in both) == 0
    finally:
        await store.close()
