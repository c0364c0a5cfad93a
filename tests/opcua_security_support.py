"""A real asyncua server with security policies, its own certificate and a trust list, made in the test.

``secured_machine`` serves one machine (StateCode, PartsTotal, ProgramName) on a free loopback port with the
given security policies. The server trusts exactly the client certificates handed to it (others are
refused at CreateSession with BadCertificateUntrusted, as a real server's trust list would) and,
when ``users`` is given, accepts only those users with their passwords.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from asyncua import Node, Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.cert_gen import generate_private_key, generate_self_signed_app_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

EQUIPMENT = "cnc-secure"
# The value of the machine's ProgramName: text to look for on the wire.
PROGRAM_NAME = "PROGRAM-O4711-CONFIDENTIAL"
SERVER_URI = "urn:smart-factory:test:secured-machine"


@dataclass(frozen=True)
class ServerIdentity:
    """A server's application certificate (DER file) and key (PEM file)."""

    certificate_file: Path
    key_file: Path
    certificate: x509.Certificate


def make_server_identity(directory: Path, name: str = "server", uri: str = SERVER_URI) -> ServerIdentity:
    directory.mkdir(parents=True, exist_ok=True)
    key = generate_private_key()
    certificate = generate_self_signed_app_certificate(
        key,
        name,
        {},
        [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")],
        extended=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        days=2,
    )
    identity = ServerIdentity(directory / f"{name}.der", directory / f"{name}-key.pem", certificate)
    identity.certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    identity.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return identity


class PasswordUsers(UserManager):
    def __init__(self, users: Mapping[str, str]):
        self.users = dict(users)

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


@dataclass
class SecuredMachine:
    server: Server
    endpoint: str
    state_code: Node
    parts_total: Node
    program_name: Node
    client_certificates_seen: list[x509.Certificate] = field(default_factory=list)

    async def write_parts(self, count: int, ts: datetime) -> None:
        await self.parts_total.write_value(ua.DataValue(ua.Variant(count, ua.VariantType.UInt32), SourceTimestamp=ts))

    async def write_state(self, code: int, ts: datetime) -> None:
        await self.state_code.write_value(ua.DataValue(ua.Variant(code, ua.VariantType.Int32), SourceTimestamp=ts))


@contextlib.asynccontextmanager
async def secured_machine(
    port: int,
    identity: ServerIdentity,
    policies: list[ua.SecurityPolicyType],
    *,
    trusted_clients: Sequence[Path] = (),
    users: Mapping[str, str] | None = None,
) -> AsyncIterator[SecuredMachine]:
    server = Server(user_manager=PasswordUsers(users) if users is not None else None)
    await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{port}/secured/"
    server.set_endpoint(endpoint)
    await server.set_application_uri(SERVER_URI)
    server.set_security_policy(policies)
    if users is not None:
        server.set_identity_tokens([ua.UserNameIdentityToken])
    await server.load_certificate(identity.certificate_file)
    await server.load_private_key(identity.key_file)
    trusted = {x509.load_der_x509_certificate(p.read_bytes()) for p in trusted_clients}
    ns = await server.register_namespace(f"urn:smart-factory:simulator:{EQUIPMENT}")
    machine_node = await server.nodes.objects.add_object(ua.NodeId(EQUIPMENT, ns), EQUIPMENT)
    state_code = await machine_node.add_variable(
        ua.NodeId(f"{EQUIPMENT}.StateCode", ns), "StateCode", ua.Variant(1, ua.VariantType.Int32)
    )
    parts_total = await machine_node.add_variable(
        ua.NodeId(f"{EQUIPMENT}.PartsTotal", ns), "PartsTotal", ua.Variant(0, ua.VariantType.UInt32)
    )
    program_name = await machine_node.add_variable(
        ua.NodeId(f"{EQUIPMENT}.ProgramName", ns), "ProgramName", ua.Variant(PROGRAM_NAME, ua.VariantType.String)
    )
    machine = SecuredMachine(server, endpoint, state_code, parts_total, program_name)

    async def trust_list(certificate: x509.Certificate, application: ua.ApplicationDescription) -> None:
        machine.client_certificates_seen.append(certificate)
        if certificate not in trusted:
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

    server.set_certificate_validator(trust_list)
    await server.start()
    try:
        yield machine
    finally:
        await server.stop()
