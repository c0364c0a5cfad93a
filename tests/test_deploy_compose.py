"""docker-compose.yml is correct for a user with Docker: images, healthchecks, no literal secrets.

Docker cannot run on the CI machines, so the file is checked by structure, and the settings file the
services use is loaded exactly as the containers would load it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.assets import load_asset_model
from core.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEYS", re.IGNORECASE)
ENV_REFERENCE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]+\}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_stack_has_broker_influxdb2_grafana_and_every_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:")
    assert services["influxdb"]["image"].startswith("influxdb:2")
    assert services["grafana"]["image"].startswith("grafana/")
    for room in ("ingest", "kpi", "api", "simulator", "edge"):
        assert services[room]["command"] == [room]


def test_every_service_has_an_image_or_build_and_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert "image" in service or "build" in service, name
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"


def test_no_literal_secrets_only_required_environment_references(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert isinstance(value, str) and ENV_REFERENCE.match(value), (
                    f"{name}.{key} must be ${{VAR:?message}}, not a literal"
                )


def test_published_ports_bind_to_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_dependencies_name_existing_services(compose: dict[str, Any]) -> None:
    names = set(compose["services"])
    for service in compose["services"].values():
        assert set(service.get("depends_on", {})) <= names


def test_container_settings_load_and_match_the_asset_model() -> None:
    settings = load_settings(
        REPO / "config" / "platform.yaml",
        environ={"FACTORY_INFLUX_TOKEN": "a-real-token-from-the-environment"},
    )
    assets = load_asset_model(settings.assets)
    assert settings.store.kind == "influxdb"
    assert settings.edge is not None
    configured = {s.equipment for s in settings.edge.opcua} | {m.equipment for m in settings.edge.meters}
    # The containers simulate and collect one site of the park (simulator.site).
    assert settings.simulator.site == "cq-demo"
    simulated = assets.scope(settings.simulator.site)
    expected = {eq.id for eq in simulated if eq.type.value in ("cnc", "robot", "meter")}
    assert configured == expected


def test_grafana_datasource_reads_its_token_from_the_environment() -> None:
    text = (REPO / "deploy/grafana/provisioning/datasources/influxdb.yaml").read_text()
    datasource = yaml.safe_load(text)["datasources"][0]
    assert datasource["secureJsonData"]["httpHeaderValue1"] == "Token ${FACTORY_INFLUX_TOKEN}"
    assert datasource["jsonData"]["dbName"] == "factory"
