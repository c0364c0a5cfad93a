"""docker-compose.yml is correct for a user with Docker: checked by structure, then by a real Compose.

No Docker engine runs on the CI machines, so the file is parsed and checked here (healthcheck per
service, dependencies on healthy services, secrets only from the environment, pinned images, named
volumes, every mounted file present), and then validated by Debian's ``docker-compose`` (1.29,
which needs no engine for ``config``) with the ``.env`` that ``factory deploy init`` writes. The
broker's start script and files run on a real Mosquitto in ``test_deploy_mosquitto.py``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.assets import load_asset_model
from core.settings import load_settings
from factory.deploy_cli import init
from factory.deploy_files import ENV_SECRETS, parse_env_file

REPO = Path(__file__).resolve().parent.parent
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEYS", re.IGNORECASE)
REQUIRED_REFERENCE = re.compile(r"^\$\{([A-Z][A-Z0-9_]*):\?[^}]+\}$")
PINNED_TAG = re.compile(r"^[^:@\s]+(:\d+\.\d+\.\d+(-[\w.]+)?)?(@sha256:[0-9a-f]{64})?$")
PLATFORM = ("ingest", "kpi", "dashboard-feed", "api", "simulator", "edge")
# The dashboards' feed of what InfluxQL cannot compute (kpi/dashboards/feed.py), the last two days hourly.
COMMANDS = {"dashboard-feed": ["grafana", "feed", "--days", "2", "--every", "3600"]}
GENERATED = ("secrets/",)  # bind sources `factory deploy init` writes
DOCKER_COMPOSE = shutil.which("docker-compose")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


def required_variables(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", text))


def binds(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for volume in service.get("volumes", []):
        source, target, *_ = str(volume).split(":")
        if source.startswith((".", "/")):
            yield source, target


def test_stack_has_broker_influxdb2_grafana_and_every_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2.")
    assert services["influxdb"]["image"].startswith("influxdb:2.")
    assert services["grafana"]["image"].startswith("grafana/grafana-oss:")
    for room in PLATFORM:
        assert services[room]["command"] == COMMANDS.get(room, [room])


def test_images_are_pinned_to_a_version(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image and PINNED_TAG.match(image), f"{name}: {image} is not pinned to major.minor.patch"


def test_every_service_has_a_healthcheck_that_checks_it_works(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
    for room in PLATFORM:  # each platform service judged as itself (factory/health.py), not by a heartbeat alone
        assert services[room]["healthcheck"]["test"] == ["CMD", "factory", "healthcheck", "--service", room]
    # The broker: a client signs in with its own password and reads a message.
    broker = services["mosquitto"]["healthcheck"]["test"][1]
    assert "mosquitto_sub" in broker and "-u healthcheck" in broker and "$$BROKER_HEALTHCHECK_PASSWORD" in broker
    # InfluxDB: initialised (the init script's last authorization exists), not only answering /ping.
    assert "influx v1 auth list" in services["influxdb"]["healthcheck"]["test"][1]
    assert "/api/health" in services["grafana"]["healthcheck"]["test"][1]


def test_dependencies_wait_for_healthy_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {
        "ingest": {"mosquitto", "influxdb"},
        "kpi": {"influxdb"},
        "dashboard-feed": {"kpi"},
        "api": {"influxdb"},
        "grafana": {"influxdb"},
        "edge": {"mosquitto", "simulator"},
        "simulator": {"mosquitto"},
    }
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must name conditions"
        assert set(depends) == expected.get(name, set()), name
        for other, condition in depends.items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {other}"
            assert "healthcheck" in services[other]


def test_no_literal_secrets_only_required_environment_references(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert isinstance(value, str) and REQUIRED_REFERENCE.match(value), (
                    f"{name}.{key} must be ${{VAR:?message}}, not a literal or a default"
                )
    text = (REPO / "docker-compose.yml").read_text()
    # A password on a command line is a variable of the container, never a value.
    for option in re.findall(r"(?:-P|--password)\s+(\S+)", text):
        assert option.strip("\"'\\").startswith("$$"), option
    assert not re.search(r"\$\{[A-Z_]*(PASSWORD|TOKEN)[A-Z_]*:-", text), "a secret with a default value"


def test_every_secret_compose_asks_for_is_one_deploy_init_writes(compose: dict[str, Any]) -> None:
    asked = required_variables((REPO / "docker-compose.yml").read_text())
    assert asked == {secret.name for secret in ENV_SECRETS}


def test_data_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    data = {"mosquitto": "/mosquitto/data", "influxdb": "/var/lib/influxdb2", "grafana": "/var/lib/grafana"}
    data |= dict.fromkeys(PLATFORM, "/var/lib/factory")
    for name, service in compose["services"].items():
        named = {}
        for volume in service.get("volumes", []):
            source, target, *_ = str(volume).split(":")
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
                named[target] = source
        assert data[name] in named, f"{name}: {data[name]} is not a named volume"


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for source, target in binds(service):
            if source.startswith(tuple(f"./{g}" for g in GENERATED)):
                continue  # written by `factory deploy init`: checked in the docker-compose config test
            assert (REPO / source).exists(), f"{name}: {source} (mounted at {target}) does not exist"


def test_published_ports_bind_to_loopback_or_the_configured_broker_address(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            if name == "mosquitto":  # gateways reach it from the plant network, where the operator says
                assert str(port) == "${BROKER_PUBLISH_ADDRESS:-127.0.0.1}:1883:1883"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_the_broker_runs_the_start_check_on_the_shipped_config(compose: dict[str, Any]) -> None:
    broker = compose["services"]["mosquitto"]
    mounts = {target: source for source, target in binds(broker)}
    assert broker["entrypoint"][:3] == ["/bin/sh", "/mosquitto/start/start.sh", "/mosquitto/config/mosquitto.conf"]
    assert mounts["/mosquitto/start/start.sh"] == "./deploy/mosquitto/start.sh"
    assert mounts["/mosquitto/config/mosquitto.conf"] == "./deploy/mosquitto/mosquitto.conf"
    assert mounts[broker["entrypoint"][3]] == "./secrets/mosquitto"
    config = (REPO / "deploy/mosquitto/mosquitto.conf").read_text().splitlines()
    assert "allow_anonymous false" in config and "persistence true" in config
    assert "password_file /mosquitto/auth/passwd" in config and "acl_file /mosquitto/auth/acl" in config


def test_influxdb_runs_the_init_script_with_every_password_it_needs(compose: dict[str, Any]) -> None:
    influxdb = compose["services"]["influxdb"]
    mounts = {target: source for source, target in binds(influxdb)}
    assert mounts["/docker-entrypoint-initdb.d"] == "./deploy/influxdb/init"
    script = (REPO / "deploy/influxdb/init/10-factory.sh").read_text()
    needed = set(re.findall(r"authorize \w+ (INFLUX_\w+_PASSWORD)", script))
    assert needed == {"INFLUX_INGEST_PASSWORD", "INFLUX_KPI_PASSWORD", "INFLUX_API_PASSWORD", "INFLUX_GRAFANA_PASSWORD"}
    assert needed <= set(influxdb["environment"])
    # Each platform service signs in as its own v1 authorization, with the password made for it.
    for room in ("ingest", "kpi", "api"):
        environment = compose["services"][room]["environment"]
        assert environment["FACTORY__STORE__INFLUX_USERNAME"] == room
        assert environment["FACTORY_INFLUX_PASSWORD"].startswith(f"${{INFLUX_{room.upper()}_PASSWORD:?")


def test_grafana_is_provisioned_and_its_datasource_reads_its_password_from_the_environment(
    compose: dict[str, Any],
) -> None:
    grafana = compose["services"]["grafana"]
    mounts = {target: source for source, target in binds(grafana)}
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    providers = [
        provider
        for path in sorted((REPO / "deploy/grafana/provisioning/dashboards").glob("*.y*ml"))
        for provider in yaml.safe_load(path.read_text()).get("providers", [])
    ]
    assert providers, "no dashboard provider provisioned"
    for provider in providers:  # each provider reads a directory the compose file mounts from the repo
        path = provider["options"]["path"]
        source = next((s for t, s in mounts.items() if path == t or path.startswith(t + "/")), None)
        assert source is not None, f"dashboard provider path {path} is not mounted"
        assert (REPO / source / Path(path).relative_to(next(t for t in mounts if mounts[t] == source))).is_dir()
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    # Grafana expands $NAME and ${NAME} in datasource provisioning from its environment ($$: a literal $).
    environment = set(grafana["environment"])
    files = sorted((REPO / "deploy/grafana/provisioning/datasources").glob("*.y*ml"))
    for path in files:
        for variable in re.findall(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", path.read_text().replace("$$", "")):
            assert variable in environment, f"{path.name} reads ${variable}, which compose does not pass to Grafana"
    influx = [d for path in files for d in yaml.safe_load(path.read_text())["datasources"] if d["type"] == "influxdb"]
    assert len(influx) == 1, "one InfluxDB datasource"
    # The read-only v1 authorization deploy/influxdb/init makes for Grafana, on the platform's database.
    assert influx[0]["user"] == "grafana" and influx[0]["secureJsonData"]["password"] == "${INFLUX_GRAFANA_PASSWORD}"
    assert influx[0]["url"] == "http://influxdb:8086" and influx[0]["jsonData"]["dbName"] == "factory"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A compose project as a user has it: the repository's files, and what `factory deploy init` wrote."""
    for name in ("docker-compose.yml", "Dockerfile", "deploy", "config"):
        (tmp_path / name).symlink_to(REPO / name)
    init(tmp_path, ["gw-1"], simulated=True, force=False)
    return tmp_path


def docker_compose(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if DOCKER_COMPOSE is None:
        pytest.fail("docker-compose not found: install it with 'apt-get install docker-compose' (./run test does)")
    return subprocess.run(
        [DOCKER_COMPOSE, "--project-directory", str(project), "-f", str(project / "docker-compose.yml"), *args],
        cwd=project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_docker_compose_accepts_the_file_with_the_env_deploy_init_writes(project: Path) -> None:
    result = docker_compose(project, "--profile", "simulated", "config")
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    env = parse_env_file((project / ".env").read_text())
    services = resolved["services"]
    assert set(services) == {"mosquitto", "influxdb", "grafana", *PLATFORM}
    assert services["ingest"]["environment"]["FACTORY_BROKER_PASSWORD"] == env["BROKER_INGEST_PASSWORD"]
    assert services["kpi"]["environment"]["FACTORY_INFLUX_PASSWORD"] == env["INFLUX_KPI_PASSWORD"]
    assert services["grafana"]["environment"]["INFLUX_GRAFANA_PASSWORD"] == env["INFLUX_GRAFANA_PASSWORD"]
    for name, service in services.items():  # every bind mount, as Compose resolved it, exists
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith("/"):
                assert Path(source).exists(), f"{name}: {source} does not exist"
    assert (project / "secrets/mosquitto/passwd").stat().st_mode & 0o077 == 0  # the owner's only
    assert (project / ".env").stat().st_mode & 0o077 == 0


def test_docker_compose_refuses_to_start_without_the_secrets(project: Path) -> None:
    (project / ".env").unlink()
    result = docker_compose(project, "config")
    assert result.returncode != 0
    assert "run factory deploy init" in result.stderr


def test_the_platform_services_settings_load_as_the_containers_would(compose: dict[str, Any], project: Path) -> None:
    env = parse_env_file((project / ".env").read_text())
    for room in ("ingest", "kpi", "api", "edge"):
        environ = {
            key: re.sub(r"\$\{([A-Z0-9_]+):\?[^}]+\}", lambda m: env[m.group(1)], str(value))
            for key, value in compose["services"][room]["environment"].items()
        }
        settings = load_settings(REPO / "config" / "platform.yaml", environ=environ)
        assert settings.store.kind == "influxdb"
        if room != "edge":
            assert settings.store.influx_username == room and settings.store.influx_password is not None
            assert settings.store.influx_password.get_secret_value() == environ["FACTORY_INFLUX_PASSWORD"]
        if room in ("ingest", "edge"):
            assert settings.broker.username == {"ingest": "ingest", "edge": "gw-machining"}[room]
            assert settings.broker.password is not None


def test_everything_the_services_write_lives_in_the_data_volume() -> None:
    settings = load_settings(
        REPO / "config" / "platform.yaml",
        environ={"FACTORY__STORE__INFLUX_USERNAME": "kpi", "FACTORY_INFLUX_PASSWORD": "from-the-environment-1234"},
    )
    assert settings.edge is not None
    written = {
        "ingest.dead_letter_path": settings.ingest.dead_letter_path,
        "inputs.path": settings.inputs.path,
        "api.keys_path": settings.api.keys_path,
        "api.reports_dir": settings.api.reports_dir,
        "reports.keys_dir": settings.reports.keys_dir,
        "edge.buffer_path": settings.edge.buffer_path,
    }
    for name, path in written.items():  # not the image's /app, which the service's user cannot write
        assert Path(path).is_relative_to("/var/lib/factory"), f"{name}: {path}"


def test_container_settings_match_the_asset_model() -> None:
    settings = load_settings(
        REPO / "config" / "platform.yaml",
        environ={"FACTORY__STORE__INFLUX_USERNAME": "kpi", "FACTORY_INFLUX_PASSWORD": "from-the-environment-1234"},
    )
    assets = load_asset_model(settings.assets)
    assert settings.edge is not None
    configured = {s.equipment for s in settings.edge.opcua} | {m.equipment for m in settings.edge.meters}
    # The containers simulate and collect one site of the park (simulator.site).
    assert settings.simulator.site == "cq-demo"
    simulated = assets.scope(settings.simulator.site)
    expected = {eq.id for eq in simulated if eq.type.value in ("cnc", "robot", "meter")}
    assert configured == expected
