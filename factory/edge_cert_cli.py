"""``factory edge cert``: create the edge agent's OPC UA application certificate and private key.

A gateway's first step, so it runs without a settings file. Into ``--out`` it writes

* ``edge-cert.der``: a self-signed application instance certificate (OPC 10000-6 6.2.2, made by
  asyncua's generator): RSA, SHA-256, the application URI and the host names in subjectAltName
  (servers compare the URI with the one the client announces), client and server authentication;
* ``edge-key.pem``: its private key, unencrypted PKCS#8, created with mode 0600;
* ``trusted/`` (the trust list: server certificates go here) and ``rejected/`` (where the agent
  saves a server certificate it refused, for someone to check and move to ``trusted/``);

and prints the lines for the ``security:`` section of each OPC UA source. Existing files are kept
unless ``--force``: a new certificate must be trusted anew by every server.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from asyncua.crypto.cert_gen import generate_self_signed_app_certificate
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge.opcua_security import default_application_uri, thumbprint

CERTIFICATE_FILE = "edge-cert.der"
KEY_FILE = "edge-key.pem"
TRUSTED_DIR = "trusted"
REJECTED_DIR = "rejected"
DEFAULT_DAYS = 730


@dataclass(frozen=True)
class ApplicationCertificate:
    certificate_file: Path
    key_file: Path
    trust_dir: Path
    certificate: x509.Certificate


def add_edge_cert_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="cert: directory for the certificate, its key and the trust list")
    p.add_argument(
        "--application-uri",
        help="cert: the agent's OPC UA application URI (default: urn:<host name>:smart-factory:edge)",
    )
    p.add_argument(
        "--hostname",
        action="append",
        help="cert: a DNS name or IP address of this gateway, written into subjectAltName "
        "(repeatable; default: this host's name)",
    )
    p.add_argument(
        "--days", type=int, default=DEFAULT_DAYS, help=f"cert: how long it is valid (default {DEFAULT_DAYS})"
    )
    p.add_argument(
        "--key-bits", type=int, choices=(2048, 3072, 4096), default=2048, help="cert: RSA key size (default 2048)"
    )
    p.add_argument("--force", action="store_true", help="cert: replace an existing certificate and key")


def run_edge_cert(args: argparse.Namespace) -> int:
    if args.out is None:
        print("factory edge cert: --out DIR is required", file=sys.stderr)
        return 2
    if not 1 <= args.days <= 36_500:
        print("factory edge cert: --days must be between 1 and 36500", file=sys.stderr)
        return 2
    hostnames = args.hostname or [socket.gethostname()]
    uri = args.application_uri or default_application_uri(hostnames[0])
    try:
        made = make_application_certificate(
            args.out, application_uri=uri, hostnames=hostnames, days=args.days, key_bits=args.key_bits, force=args.force
        )
    except FileExistsError as exc:
        print(
            f"factory edge cert: {exc.filename} exists; keeping it (--force replaces it, and then every "
            "server must trust the new certificate)",
            file=sys.stderr,
        )
        return 1
    except (OSError, ValueError) as exc:
        print(f"factory edge cert: {exc}", file=sys.stderr)
        return 1
    certificate = made.certificate
    print(f"certificate: {made.certificate_file}")
    print(f"private key: {made.key_file} (mode 0600)")
    print(f"application URI: {uri}")
    print(f"host names: {', '.join(hostnames)}")
    print(f"valid until: {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    print(f"SHA-1 thumbprint: {thumbprint(certificate)}")
    print()
    print(f"Trust {made.certificate_file.name} on each OPC UA server, put each server's certificate into")
    print(f"{made.trust_dir}/, and give each OPC UA source of the edge settings:")
    print("    security:")
    print("      policy: Basic256Sha256          # or Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss")
    print("      mode: SignAndEncrypt            # or Sign")
    print(f"      certificate: {made.certificate_file}")
    print(f"      private_key: {made.key_file}")
    print(f"      trust_dir: {made.trust_dir}")
    return 0


def make_application_certificate(
    out: Path,
    *,
    application_uri: str,
    hostnames: list[str],
    days: int = DEFAULT_DAYS,
    key_bits: int = 2048,
    force: bool = False,
) -> ApplicationCertificate:
    """Write the certificate, key and trust directories into ``out``; FileExistsError unless ``force``."""
    if ":" not in application_uri:
        raise ValueError(f"the application URI {application_uri!r} is not a URI (e.g. urn:gw-1:smart-factory:edge)")
    out.mkdir(parents=True, exist_ok=True)
    certificate_file, key_file = out / CERTIFICATE_FILE, out / KEY_FILE
    if not force:
        for path in (certificate_file, key_file):
            if path.exists():
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    certificate = generate_self_signed_app_certificate(
        key,
        f"smart-factory edge {hostnames[0]}",
        {},
        names,
        extended=[ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
        days=days,
    )
    _write_private(
        key_file,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    trust_dir = out / TRUSTED_DIR
    trust_dir.mkdir(exist_ok=True)
    (out / REJECTED_DIR).mkdir(exist_ok=True)
    return ApplicationCertificate(certificate_file, key_file, trust_dir, certificate)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``path`` readable by this user only from its first byte on (no window at the default umask)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
