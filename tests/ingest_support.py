"""Helpers shared by the ingest tests that run a real IngestService against real servers."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from core.assets import AssetModel, load_asset_model
from core.settings import BrokerSettings, IngestSettings, Settings, UplinkSettings
from ingest import IngestService
from tests.servers import MosquittoServer

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_ASSETS = REPO / "config" / "factory.yaml"


# Two gateways on one line: gw-a's own machine and one the model gives to gw-b; and a line without a
# gateway, whose machine any edge may report.
GATEWAY_ASSETS = """\
version: 1
site:
  id: s
  workshops:
    - id: w
      lines:
        - id: line-a
          gateway: gw-a
          equipment:
            - {id: cnc-a1, type: cnc, ideal_cycle_time_s: 5}
            - {id: cnc-b-on-a, type: cnc, ideal_cycle_time_s: 5, gateway: gw-b}
        - id: line-open
          equipment:
            - {id: cnc-open, type: cnc, ideal_cycle_time_s: 5}
"""


def asset_model(path: Path, text: str) -> AssetModel:
    """The asset model ``text``, written to ``path`` and loaded from there (so it has a source)."""
    path.write_text(text)
    return load_asset_model(path)


def _ingest_section(workdir: Path, **ingest: Any) -> IngestSettings:
    """Dead letters in workdir and a client id of its own, so tests never share a session."""
    return IngestSettings(
        dead_letter_path=workdir / "dead-letters.sqlite",
        client_id=f"ingest-{uuid.uuid4().hex[:8]}",
        **{"flush_interval_s": 0.05, **ingest},
    )


def ingest_settings(
    workdir: Path, mosquitto: MosquittoServer, assets: Path = EXAMPLE_ASSETS, **ingest: Any
) -> Settings:
    """Settings with a topic prefix and a client id of their own, so tests never share a session."""
    return Settings(
        assets=assets,
        broker=BrokerSettings(host=mosquitto.host, port=mosquitto.port),
        uplink=UplinkSettings(topic_prefix=f"test/{uuid.uuid4().hex[:8]}/uplink"),
        ingest=_ingest_section(workdir, **ingest),
    )


def shipped_topic_ingest_settings(workdir: Path, broker: BrokerSettings, assets: AssetModel, **ingest: Any) -> Settings:
    """Settings for ingest on the shipped uplink topics (the ACL knows only those), signed in as ``broker`` says."""
    return Settings(
        assets=Path(assets.source),
        broker=broker,
        uplink=UplinkSettings(topic_prefix="factory/uplink"),
        ingest=_ingest_section(workdir, **ingest),
    )


@contextlib.asynccontextmanager
async def bounded(seconds: float, what: str) -> AsyncIterator[None]:
    """Fail the test with a message, instead of hanging it, when the block takes longer than it ever should."""
    try:
        async with asyncio.timeout(seconds) as deadline:
            yield
    except TimeoutError:
        if not deadline.expired():
            raise
        pytest.fail(f"timed out after {seconds} s: {what}")


@contextlib.asynccontextmanager
async def mqtt_publisher(mosquitto: MosquittoServer, **options: Any) -> AsyncIterator[aiomqtt.Client]:
    identifier = f"pub-{uuid.uuid4().hex[:6]}"
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier=identifier, **options) as client:
        yield client


async def publish_to(client: aiomqtt.Client, topic: str, payload: bytes) -> None:
    async with bounded(5, f"publishing to {topic} (QoS 1 PUBACK)"):
        await client.publish(topic, payload, qos=1)


async def started(service: IngestService) -> IngestService:
    async with bounded(10, "ingest subscribed to the uplink topics"):
        await service.subscribed.wait()
    return service
