"""Shared fixtures: real Mosquitto and InfluxDB servers on loopback, started once per test session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from core.store import Store
from core.stores.influx import InfluxStore
from core.stores.sqlite import SqliteStore
from tests.servers import InfluxServer, MosquittoServer, influxdb, mosquitto

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mosquitto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    with mosquitto(tmp_path_factory.mktemp("mosquitto")) as server:
        yield server


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    with influxdb(tmp_path_factory.mktemp("influxdb")) as server:
        yield server


@pytest.fixture
def influx_database() -> str:
    """A fresh database name per test, so tests never see each other's points."""
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def example_assets_path() -> Path:
    return REPO / "config" / "factory.yaml"


@pytest.fixture(params=["sqlite", "influxdb"])
async def each_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An empty store of each kind: an SQLite file, and a database of its own on the real InfluxDB."""
    if request.param == "sqlite":
        store: Store = SqliteStore(tmp_path / "store.sqlite")
    else:
        server: InfluxServer = request.getfixturevalue("influx_server")
        store = InfluxStore(server.url, request.getfixturevalue("influx_database"))
    try:
        yield store
    finally:
        await store.close()
