"""What ``factory deploy init`` writes: the stack's secrets, the broker's password file and its ACL.

Pure functions from names and secrets to file contents; ``factory/deploy_cli.py`` draws the secrets
and writes the files. Nothing here has a default password: every secret is drawn at ``init``.

The broker knows one user per client: ``ingest`` reads every uplink topic, each gateway writes only
its own (``factory/uplink/<edge id>``), ``healthcheck`` reads only the broker's uptime (what the
compose healthcheck subscribes to), and with ``--simulated`` the ``simulator`` publishes meter
readings that the simulated edge reads. The ACL names every user and topic (no ``pattern``): a user
the password file holds but the ACL does not name can connect and do nothing.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Mosquitto's PBKDF2-SHA512 hash ($7$, Mosquitto >= 2.0): what `mosquitto_passwd` writes by default.
# Its default of 101 iterations is kept: every password here is 256 random bits, so the work factor
# guards nothing a guess could find, and each client connection pays for it.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12  # mosquitto_passwd's salt length
SECRET_BYTES = 32

# An edge id becomes a broker user name and a topic level: no wildcards, separators or spaces.
EDGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
RESERVED_USERS = frozenset({"ingest", "healthcheck", "simulator"})
SIMULATED_EDGE = "gw-machining"  # edge.id in config/platform.yaml, the compose "simulated" profile's edge
UPLINK_PREFIX = "factory/uplink"
METER_TOPICS = "meters/#"  # where the simulator's meters publish (config/platform.yaml edge.meters)


@dataclass(frozen=True, slots=True)
class EnvSecret:
    """One variable of ``.env``: its name and what it is for (written as a comment above it)."""

    name: str
    purpose: str


# Every secret docker-compose.yml asks for, in the order .env lists them.
ENV_SECRETS: tuple[EnvSecret, ...] = (
    EnvSecret("BROKER_INGEST_PASSWORD", "MQTT password of the broker user 'ingest' (reads every uplink topic)"),
    EnvSecret("BROKER_HEALTHCHECK_PASSWORD", "MQTT password of 'healthcheck' (reads $SYS/broker/uptime only)"),
    EnvSecret("BROKER_SIMULATOR_PASSWORD", "MQTT password of 'simulator' (profile simulated; with --simulated)"),
    EnvSecret(
        "BROKER_SIMULATED_EDGE_PASSWORD", f"MQTT password of the simulated edge '{SIMULATED_EDGE}' (profile simulated)"
    ),
    EnvSecret("INFLUXDB_ADMIN_PASSWORD", "InfluxDB 2.x initial admin user 'factory-admin' (UI, backups)"),
    EnvSecret("INFLUXDB_ADMIN_TOKEN", "InfluxDB 2.x operator token (influx backup/restore, the init script)"),
    EnvSecret("INFLUX_INGEST_PASSWORD", "InfluxDB v1 authorization 'ingest': write the bucket"),
    EnvSecret("INFLUX_KPI_PASSWORD", "InfluxDB v1 authorization 'kpi': read and write the bucket (rollups)"),
    EnvSecret("INFLUX_API_PASSWORD", "InfluxDB v1 authorization 'api': read the bucket"),
    EnvSecret("INFLUX_GRAFANA_PASSWORD", "InfluxDB v1 authorization 'grafana': read the bucket"),
    EnvSecret("GRAFANA_ADMIN_PASSWORD", "Grafana user 'admin'"),
)


def new_secret() -> str:
    """256 random bits, URL-safe base64: no character a shell, an .env file or a URL would change."""
    return secrets.token_urlsafe(SECRET_BYTES)


def check_edge_id(edge: str) -> str:
    """The edge id as a broker user and topic level, or ValueError saying why it cannot be one."""
    if not EDGE_ID.match(edge):
        raise ValueError(
            f"edge id {edge!r}: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            " (it is the broker user name and a level of its uplink topic)"
        )
    if edge in RESERVED_USERS:
        raise ValueError(f"edge id {edge!r} is a broker user of the platform itself")
    return edge


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """``$7$<iterations>$<salt>$<hash>``: PBKDF2-HMAC-SHA512 as Mosquitto 2.0 stores and checks it."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def password_file(passwords: Mapping[str, str]) -> str:
    """Mosquitto's password file: ``user:hash`` per line."""
    for user in passwords:
        if not user or ":" in user or "\n" in user:
            raise ValueError(f"broker user name {user!r} cannot stand in a password file")
    return "".join(f"{user}:{mosquitto_hash(password)}\n" for user, password in passwords.items())


def broker_users(edges: Iterable[str], simulated: bool) -> list[str]:
    """The broker's users, platform first: ingest, healthcheck, [simulator, simulated edge], gateways."""
    users = ["ingest", "healthcheck"]
    if simulated:
        users += ["simulator", SIMULATED_EDGE]
    return users + [edge for edge in edges if edge not in users]


def acl_file(edges: Iterable[str], simulated: bool) -> str:
    """Every user's topics, by name: each gateway writes only its own uplink topic; ingest only reads."""
    lines = [
        "# Written by `factory deploy init`, rewritten by `factory deploy add-edge|remove-edge`",
        "# (docs/operations.md): hand edits here are lost at the next change.",
        "# Each user may do what is listed under it and nothing else; a user not named here can do nothing.",
        "",
        "# Ingest reads every uplink topic (also as $share/<group>/factory/uplink/+) and writes no uplink data;",
        "# the instances of a shared group report the sequence numbers they received to each other here.",
        "user ingest",
        f"topic read {UPLINK_PREFIX}/+",
        "topic readwrite factory/ingest/#",
        "",
        "# The broker's healthcheck (docker-compose.yml) reads the broker's uptime and nothing else.",
        "user healthcheck",
        "topic read $SYS/broker/uptime",
    ]
    if simulated:
        lines += [
            "",
            "# The simulator's meters publish their readings; the simulated edge reads them.",
            "user simulator",
            f"topic write {METER_TOPICS}",
            "",
            f"user {SIMULATED_EDGE}",
            f"topic write {UPLINK_PREFIX}/{SIMULATED_EDGE}",
            f"topic read {METER_TOPICS}",
        ]
    for edge in edges:
        if simulated and edge == SIMULATED_EDGE:
            continue
        lines += ["", f"user {edge}", f"topic write {UPLINK_PREFIX}/{edge}"]
    return "\n".join(lines) + "\n"


def env_file(values: Mapping[str, str]) -> str:
    """``.env`` for docker compose: each secret with a comment saying what it is for."""
    purposes = {secret.name: secret.purpose for secret in ENV_SECRETS}
    lines = [
        "# Written by `factory deploy init`: the stack's secrets, drawn at random. Keep this file (mode 0600)",
        "# and back it up with the volumes (docs/operations.md); never commit it.",
    ]
    for name, value in values.items():
        if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ValueError(f"{name}: a value for .env must be URL-safe base64 (no quoting, no '$')")
        lines += ["", f"# {purposes.get(name, name)}", f"{name}={value}"]
    return "\n".join(lines) + "\n"


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines of an .env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    return values


def edge_env_file(edge: str, password: str) -> str:
    """What a gateway needs from the platform to sign in to the broker (its systemd EnvironmentFile)."""
    return (
        f"# Broker credential of gateway {edge!r}, written by `factory deploy init`. Copy it to the gateway\n"
        "# (mode 0600; docs/gateway.md) and set broker.username to the edge id there.\n"
        f"FACTORY__BROKER__USERNAME={edge}\n"
        f"FACTORY_BROKER_PASSWORD={password}\n"
    )
