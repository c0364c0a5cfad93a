"""``factory deploy init|add-edge``: the secrets and broker files docker-compose.yml needs, made on the host.

``init`` draws every secret of the stack at random and writes, under ``--dir`` (the directory of
docker-compose.yml):

- ``.env``: the secrets compose passes to the containers (mode 0600);
- ``secrets/mosquitto/passwd`` and ``secrets/mosquitto/acl``: one broker user per client and what
  each may do (``factory/deploy_files.py``);
- ``secrets/edges/<edge id>.env``: each gateway's broker credential, to copy to that gateway.

It refuses to overwrite any of them without ``--force``: InfluxDB and Grafana keep the passwords of
their first start in their volumes, so new ones would lock the services out of their own data.
``add-edge`` and ``remove-edge`` add and revoke gateways in the broker files and leave every other
secret as it is.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from factory.deploy_files import (
    ENV_SECRETS,
    SIMULATED_EDGE,
    acl_file,
    broker_users,
    check_edge_id,
    edge_env_file,
    env_file,
    new_secret,
    password_file,
)

# Broker users whose passwords live in .env (the containers of docker-compose.yml sign in with them).
ENV_PASSWORDS = {
    "ingest": "BROKER_INGEST_PASSWORD",
    "healthcheck": "BROKER_HEALTHCHECK_PASSWORD",
    "simulator": "BROKER_SIMULATOR_PASSWORD",
    SIMULATED_EDGE: "BROKER_SIMULATED_EDGE_PASSWORD",
}


class DeployError(Exception):
    """What ``factory deploy`` cannot do, and why."""


def add_deploy_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("init", help="write .env with random secrets and the broker's password and ACL files")
    p.add_argument("--dir", type=Path, default=Path("."), help="where docker-compose.yml is (default: .)")
    p.add_argument("--edges", default="", help="gateways' edge ids, comma-separated: one broker user each")
    p.add_argument(
        "--simulated",
        action="store_true",
        help=f"also the users of the 'simulated' compose profile (simulator, edge {SIMULATED_EDGE})",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing files (new secrets for every service)")
    p = sub.add_parser("add-edge", help="add gateways to the broker's password and ACL files")
    p.add_argument("--dir", type=Path, default=Path("."), help="where docker-compose.yml is (default: .)")
    p.add_argument("edges", help="edge ids, comma-separated")
    p = sub.add_parser("remove-edge", help="revoke gateways: out of the broker's password and ACL files")
    p.add_argument("--dir", type=Path, default=Path("."), help="where docker-compose.yml is (default: .)")
    p.add_argument("edges", help="edge ids, comma-separated")


def _edges(text: str) -> list[str]:
    edges: list[str] = []
    for edge in (part.strip() for part in text.split(",")):
        if not edge:
            continue
        try:
            check_edge_id(edge)
        except ValueError as exc:
            raise DeployError(str(exc)) from None
        if edge not in edges:
            edges.append(edge)
    return edges


def _write_private(path: Path, text: str, *, force: bool) -> None:
    """Write ``text`` readable by the owner only; refuse to replace an existing file unless forced."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise DeployError(f"{path} exists: not overwritten") from None
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


def _paths(root: Path) -> tuple[Path, Path, Path, Path]:
    secrets = root / "secrets"
    return root / ".env", secrets / "mosquitto" / "passwd", secrets / "mosquitto" / "acl", secrets / "edges"


def init(root: Path, edges: list[str], *, simulated: bool, force: bool) -> list[Path]:
    """Draw the secrets and write every file; returns the paths written."""
    env_path, passwd_path, acl_path, edges_dir = _paths(root)
    if not force:
        for path in (env_path, passwd_path, acl_path, *(edges_dir / f"{edge}.env" for edge in edges)):
            if path.exists():
                raise DeployError(f"{path} exists; keep it, or pass --force to draw new secrets for everything")
    values = {secret.name: new_secret() for secret in ENV_SECRETS}
    passwords = {user: values[ENV_PASSWORDS[user]] if user in ENV_PASSWORDS else new_secret()
                 for user in broker_users(edges, simulated)}  # fmt: skip
    written = [env_path, passwd_path, acl_path]
    _write_private(env_path, env_file(values), force=force)
    _write_private(passwd_path, password_file(passwords), force=force)
    _write_private(acl_path, acl_file(edges, simulated), force=force)
    for edge in edges:
        if simulated and edge == SIMULATED_EDGE:
            continue
        path = edges_dir / f"{edge}.env"
        _write_private(path, edge_env_file(edge, passwords[edge]), force=force)
        written.append(path)
    return written


def _broker_users(root: Path) -> list[str]:
    env_path, passwd_path, _, _ = _paths(root)
    if not passwd_path.exists() or not env_path.exists():
        raise DeployError(f"{passwd_path} or {env_path} missing: run `factory deploy init` first")
    return [line.split(":", 1)[0] for line in passwd_path.read_text().splitlines() if ":" in line]


def add_edges(root: Path, edges: list[str]) -> list[Path]:
    """Append gateways to the password file and rewrite the ACL with them; nothing else changes."""
    _, passwd_path, acl_path, edges_dir = _paths(root)
    known = _broker_users(root)
    simulated = "simulator" in known
    if already := [edge for edge in edges if edge in known]:
        raise DeployError(f"already a broker user: {', '.join(already)} (revoke first: docs/operations.md)")
    gateways = [user for user in known if user not in ENV_PASSWORDS] + edges
    passwords = {edge: new_secret() for edge in edges}
    written = []
    for edge in edges:
        path = edges_dir / f"{edge}.env"
        _write_private(path, edge_env_file(edge, passwords[edge]), force=False)
        written.append(path)
    with passwd_path.open("a") as out:
        out.write(password_file(passwords))
    _write_private(acl_path, acl_file(gateways, simulated), force=True)
    return [passwd_path, acl_path, *written]


def remove_edges(root: Path, edges: list[str]) -> list[Path]:
    """Drop gateways from the password file, the ACL and secrets/edges/; nothing else changes."""
    _, passwd_path, acl_path, edges_dir = _paths(root)
    known = _broker_users(root)
    if unknown := [edge for edge in edges if edge not in known or edge in ENV_PASSWORDS]:
        raise DeployError(f"not a gateway's broker user: {', '.join(unknown)}")
    kept = [line for line in passwd_path.read_text().splitlines(keepends=True) if line.split(":", 1)[0] not in edges]
    _write_private(passwd_path, "".join(kept), force=True)
    gateways = [user for user in known if user not in ENV_PASSWORDS and user not in edges]
    _write_private(acl_path, acl_file(gateways, "simulator" in known), force=True)
    for edge in edges:
        (edges_dir / f"{edge}.env").unlink(missing_ok=True)
    return [passwd_path, acl_path]


def run_deploy(args: argparse.Namespace) -> int:
    try:
        if args.action == "init":
            written = init(args.dir, _edges(args.edges), simulated=args.simulated, force=args.force)
        elif args.action == "add-edge":
            written = add_edges(args.dir, _edges(args.edges))
        else:
            written = remove_edges(args.dir, _edges(args.edges))
    except DeployError as exc:
        print(f"factory deploy: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    if args.action in ("add-edge", "remove-edge"):
        print("restart the broker for it to read them: docker compose restart mosquitto")
    else:
        print("next: docker compose up -d   (the gateways' credentials are in secrets/edges/)")
    return 0
