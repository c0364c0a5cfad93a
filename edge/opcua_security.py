"""OPC UA secure channel, trust list and user identity for a collector's client.

``apply_security(client, security)`` configures an asyncua client before it connects:

* Policy None, mode None: no certificates. A user's password travels as the server's user token
  policy asks (asyncua encrypts it with the server's key where the policy names one; otherwise it
  crosses the network readable, which is logged once as a warning).
* A security policy (Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss) with Sign or
  SignAndEncrypt: the agent's application certificate and key are read (at every session, so a
  renewed certificate is used from the next connection on); the client announces the application
  URI written in the certificate's subjectAltName (servers compare the two); the server's endpoints
  are listed over an unsecured channel, and the certificate of the endpoint with this policy and
  mode must be in the trust list ``trust_dir`` (the certificate itself, or a CA certificate that
  issued it) and valid now. Then asyncua opens the secure channel with that certificate, and at
  CreateSession checks that the server signs with its key, so nobody else can pose as it.

An untrusted server certificate is written to ``<trust_dir>/../rejected/<SHA-1 thumbprint>.der``,
as other OPC UA stacks do, and refused with ``UntrustedServerCertificate``, whose message names
that file: once someone has checked it and copied it into ``trust_dir``, the next attempt connects,
without a restart.

Two kinds of error:

* ``ConfigError``, for what the configuration gets wrong and no retry mends: a certificate or key
  that cannot be read or parsed, a key that does not go with the certificate, a certificate without
  an application URI, the password's environment variable unset or a placeholder, no trust
  directory. ``check_security`` finds all of these without a server (``factory check-config``).
* ``OpcUaSecurityError`` for what the server side decides: it does not offer the policy and mode,
  its certificate is not trusted or not valid now, our certificate has expired, or (through
  ``open_session``) it refuses our certificate or our user. It is a ``ua.UaError``, so the
  collector's reconnect loop treats it like the server's other refusals: logged once, retried with
  backoff, and connected as soon as the cause is mended.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies, uacrypto
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from core.errors import ConfigError, FactoryError
from core.settings import PLACEHOLDER_SECRETS, OpcUaSecurity

logger = logging.getLogger(__name__)

POLICIES: dict[str, type[security_policies.SecurityPolicy]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
MODES = {
    "None": ua.MessageSecurityMode.None_,
    "Sign": ua.MessageSecurityMode.Sign,
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}
# Every policy above takes RSA keys of 2048 to 4096 bits (OPC 10000-7 security policy profiles).
RSA_KEY_BITS = (2048, 4096)
CERTIFICATE_SUFFIXES = (".der", ".pem", ".crt", ".cer")
# What a server answers when it will not have our certificate or our user (OPC 10000-4 7.34).
CERTIFICATE_REFUSALS = frozenset(
    {
        ua.StatusCodes.BadSecurityChecksFailed,
        ua.StatusCodes.BadCertificateInvalid,
        ua.StatusCodes.BadCertificateUntrusted,
        ua.StatusCodes.BadCertificateTimeInvalid,
        ua.StatusCodes.BadCertificateIssuerTimeInvalid,
        ua.StatusCodes.BadCertificateHostNameInvalid,
        ua.StatusCodes.BadCertificateUriInvalid,
        ua.StatusCodes.BadCertificateUseNotAllowed,
        ua.StatusCodes.BadCertificateIssuerUseNotAllowed,
        ua.StatusCodes.BadCertificateRevoked,
        ua.StatusCodes.BadCertificateIssuerRevoked,
        ua.StatusCodes.BadCertificateRevocationUnknown,
        ua.StatusCodes.BadCertificateIssuerRevocationUnknown,
        ua.StatusCodes.BadApplicationSignatureInvalid,
    }
)
USER_REFUSALS = frozenset(
    {
        ua.StatusCodes.BadUserAccessDenied,
        ua.StatusCodes.BadIdentityTokenInvalid,
        ua.StatusCodes.BadIdentityTokenRejected,
        ua.StatusCodes.BadUserSignatureInvalid,
    }
)

# Least time between attempts after a server refused our user (it may lock the account after a
# few failures) or our certificate or policy (someone has to act on the server first).
USER_REFUSED_RETRY_S = 300.0
REFUSED_RETRY_S = 60.0

# Warnings said once per process: a private key others can read, a trust file that is no certificate.
_warned: set[str] = set()


class OpcUaSecurityError(FactoryError, ua.UaError):
    """The secure channel or session cannot be set up as configured, for a reason the server side decides.

    A ``ua.UaError``, so the collector's reconnect loop logs it once and retries with backoff.
    ``retry_after_s``: how long to leave the server alone at least (None: the usual backoff), so
    that a refused password is not tried every few seconds (servers may lock the account).
    """

    retry_after_s: float | None = None


class SecurityNotOffered(OpcUaSecurityError):
    """The server has no endpoint with the configured security policy and mode."""

    retry_after_s = REFUSED_RETRY_S


class UntrustedServerCertificate(OpcUaSecurityError):
    """The server's certificate is not in the trust list (or not valid now); ``rejected_file`` holds a copy."""

    def __init__(self, message: str, *, thumbprint: str, rejected_file: Path | None):
        self.thumbprint = thumbprint
        self.rejected_file = rejected_file
        super().__init__(message)


class SessionRefused(OpcUaSecurityError):
    """The server refused our application certificate or our user; ``status`` is its status code."""

    def __init__(self, message: str, *, status: int):
        self.status = status
        self.retry_after_s = USER_REFUSED_RETRY_S if status in USER_REFUSALS else REFUSED_RETRY_S
        super().__init__(message)


@dataclass(frozen=True)
class ApplicationInstance:
    """The agent's application certificate and key, read and checked."""

    certificate: x509.Certificate
    certificate_der: bytes
    private_key_der: bytes
    application_uri: str
    certificate_file: Path


def thumbprint(certificate: x509.Certificate) -> str:
    """The certificate's thumbprint as OPC UA states it: SHA-1 of the DER encoding, upper-case hex."""
    return hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER), usedforsecurity=False).hexdigest().upper()


def describe(certificate: x509.Certificate) -> str:
    """Subject, application URI and validity, for messages that ask someone to judge a certificate."""
    uris = application_uris(certificate)
    uri = f", application URI {uris[0]}" if uris else ""
    valid = f"valid {certificate.not_valid_before_utc:%Y-%m-%d} to {certificate.not_valid_after_utc:%Y-%m-%d}"
    return f"{certificate.subject.rfc4514_string()}{uri}, {valid}, SHA-1 thumbprint {thumbprint(certificate)}"


def application_uris(certificate: x509.Certificate) -> list[str]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(names.get_values_for_type(x509.UniformResourceIdentifier))


def check_security(
    security: OpcUaSecurity | None, where: str = "security", environ: Mapping[str, str] | None = None
) -> None:
    """ConfigError for whatever ``security`` gets wrong that can be known without a server.

    Called by ``factory check-config`` (and by ``apply_security`` at every session), so the check
    refuses what the agent would refuse.
    """
    if security is None:
        return
    user_password(security, where, environ)
    if security.policy != "None":
        instance = load_application_instance(security, where)
        if (expired := _not_valid_now(instance.certificate)) is not None:
            raise ConfigError(
                str(instance.certificate_file),
                f"the application certificate {expired}; make a new one with factory edge cert "
                "and have the servers trust it",
                field=f"{where}.certificate",
            )
        _trust_dir(security, where)


def user_password(
    security: OpcUaSecurity, where: str = "security", environ: Mapping[str, str] | None = None
) -> str | None:
    """The user's password from the environment variable ``password_env``; None without a user."""
    if security.username is None or security.password_env is None:
        return None
    environ = os.environ if environ is None else environ
    password = environ.get(security.password_env)
    if not password:
        raise ConfigError(
            security.password_env,
            f"the environment variable holding the password of OPC UA user {security.username!r} is not set",
            field=f"{where}.password_env",
        )
    if password.lower() in PLACEHOLDER_SECRETS:
        raise ConfigError(
            security.password_env,
            f"refusing a placeholder password for OPC UA user {security.username!r}; set the real one",
            field=f"{where}.password_env",
        )
    return password


def load_application_instance(security: OpcUaSecurity, where: str = "security") -> ApplicationInstance:
    """The agent's certificate and key from ``security``, checked: ConfigError naming the file at fault."""
    assert security.certificate is not None and security.private_key is not None, "checked by OpcUaSecurity"
    cert_file, key_file = security.certificate, security.private_key
    certificate = _parse_certificate(_read(cert_file, f"{where}.certificate"))
    if certificate is None:
        raise ConfigError(str(cert_file), "not a DER or PEM certificate", field=f"{where}.certificate")
    uris = application_uris(certificate)
    if not uris:
        raise ConfigError(
            str(cert_file),
            "the certificate names no application URI in its subjectAltName, which OPC UA requires; "
            "make one with factory edge cert",
            field=f"{where}.certificate",
        )
    key_bytes = _read(key_file, f"{where}.private_key")
    try:
        if key_bytes.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(key_bytes, password=None)
        else:
            key = serialization.load_der_private_key(key_bytes, password=None)
    except TypeError as exc:  # "Password was not given but private key is encrypted"
        raise ConfigError(
            str(key_file), "the private key is encrypted; give it unencrypted, readable by this user only",
            field=f"{where}.private_key",
        ) from exc  # fmt: skip
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(str(key_file), "not a PEM or DER private key", field=f"{where}.private_key") from exc
    if not isinstance(key, rsa.RSAPrivateKey) or not RSA_KEY_BITS[0] <= key.key_size <= RSA_KEY_BITS[1]:
        raise ConfigError(
            str(key_file),
            f"OPC UA security policies need an RSA key of {RSA_KEY_BITS[0]} to {RSA_KEY_BITS[1]} bits",
            field=f"{where}.private_key",
        )
    if _public_key_info(key.public_key()) != _public_key_info(certificate.public_key()):
        raise ConfigError(str(key_file), f"does not go with the certificate {cert_file}", field=f"{where}.private_key")
    _warn_if_readable_by_others(key_file)
    return ApplicationInstance(
        certificate=certificate,
        certificate_der=certificate.public_bytes(serialization.Encoding.DER),
        private_key_der=key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),  # asyncua reads key bytes as DER
        application_uri=uris[0],
        certificate_file=cert_file,
    )


async def apply_security(client: Client, security: OpcUaSecurity | None) -> None:
    """Configure ``client`` (not yet connected) for ``security``; see the module docstring for the errors."""
    if security is None:
        return
    password = user_password(security)
    if security.policy != "None":
        instance = load_application_instance(security)
        await _secure_channel(client, security, instance, _trust_dir(security))
    if security.username is not None:
        if security.policy == "None":
            _warn_once(
                f"plain:{client.server_url.geturl()}",
                "OPC UA server %s: user %r with security policy None: the password crosses the network "
                "readable unless the server's user token policy encrypts it; prefer SignAndEncrypt",
                client.server_url.geturl(),
                security.username,
            )
        client.set_user(security.username)
        assert password is not None
        client.set_password(password)


async def open_session(client: Client, security: OpcUaSecurity | None) -> None:
    """``apply_security`` and connect; a server refusing our certificate or user raises ``SessionRefused``.

    The message says what to do about it (have the server trust our certificate, check the user's
    password), rather than the bare status code.
    """
    await apply_security(client, security)
    try:
        await client.connect()
    except ua.UaStatusCodeError as exc:
        reason = refusal(exc.code, security)
        if reason is None:
            raise
        raise SessionRefused(f"OPC UA server {client.server_url.geturl()} {reason}", status=exc.code) from exc


def refusal(code: int, security: OpcUaSecurity | None) -> str | None:
    """What a status code refusing a session means to whoever configures ``security``; None: not a refusal."""
    name = ua.StatusCode(ua.UInt32(code)).name
    if code in USER_REFUSALS:
        if security is None or security.username is None:
            return f"refused an anonymous session ({name}): set security.username and security.password_env"
        return (
            f"refused user {security.username!r} ({name}): check the password in the environment variable "
            f"{security.password_env} and the user's rights on the server"
        )
    if code in CERTIFICATE_REFUSALS:
        if security is None or security.certificate is None:
            return f"refused the session ({name}): it may require a security policy (security.policy, .mode)"
        return (
            f"refused our application certificate {security.certificate} ({name}): add it to the "
            "server's trusted certificates (and check it is valid for this gateway's host name)"
        )
    if code in (ua.StatusCodes.BadSecurityPolicyRejected, ua.StatusCodes.BadSecurityModeRejected):
        return f"refused the security policy or mode ({name})"
    return None


# --- the secure channel ------------------------------------------------------------------------------


async def _secure_channel(
    client: Client, security: OpcUaSecurity, instance: ApplicationInstance, trust_dir: Path
) -> None:
    endpoint_url = client.server_url.geturl()
    if (expired := _not_valid_now(instance.certificate)) is not None:
        raise OpcUaSecurityError(
            f"our application certificate {instance.certificate_file} {expired}: make a new one with "
            "factory edge cert and have the servers trust it"
        )
    # The server compares this with the URI in our certificate (BadCertificateUriInvalid otherwise).
    client.application_uri = instance.application_uri
    policy, mode = POLICIES[security.policy], MODES[security.mode]
    endpoints = await client.connect_and_get_server_endpoints()
    endpoint = next(
        (e for e in endpoints if e.SecurityPolicyUri == policy.URI and e.SecurityMode == mode),
        None,
    )
    if endpoint is None:
        offered = sorted({_endpoint_name(e) for e in endpoints})
        raise SecurityNotOffered(
            f"OPC UA server {endpoint_url} offers no endpoint with policy {security.policy} and mode "
            f"{security.mode}; it offers {', '.join(offered) or 'none'} (set security.policy and .mode to one of them)"
        )
    try:  # the server's own certificate, first of the chain it may send
        server_certificate = uacrypto.x509_from_der(endpoint.ServerCertificate)
    except ValueError:
        server_certificate = None
    if server_certificate is None:
        raise SecurityNotOffered(
            f"OPC UA server {endpoint_url} sent no usable certificate with its {security.policy} endpoint"
        )
    TrustList(trust_dir).check(server_certificate, endpoint_url)
    await client.set_security(
        policy,
        certificate=instance.certificate_der,
        private_key=instance.private_key_der,
        server_certificate=server_certificate.public_bytes(serialization.Encoding.DER),
        mode=mode,
    )


def _endpoint_name(endpoint: ua.EndpointDescription) -> str:
    """An endpoint's policy and mode as the settings spell them, e.g. ``Aes128_Sha256_RsaOaep/Sign``."""
    policy = next((name for name, cls in POLICIES.items() if endpoint.SecurityPolicyUri == cls.URI), None)
    mode = next((name for name, value in MODES.items() if value == endpoint.SecurityMode), endpoint.SecurityMode.name)
    return f"{policy or endpoint.SecurityPolicyUri.rpartition('#')[2]}/{mode}"


class TrustList:
    """The server certificates (or CA certificates) in one directory; read anew at every check."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.rejected_dir = directory.parent / "rejected"

    def certificates(self) -> list[tuple[Path, x509.Certificate]]:
        found: list[tuple[Path, x509.Certificate]] = []
        try:
            files = sorted(p for p in self.directory.iterdir() if p.suffix.lower() in CERTIFICATE_SUFFIXES)
        except OSError:
            return []
        for path in files:
            try:
                certificate = _parse_certificate(path.read_bytes())
            except OSError:
                certificate = None
            if certificate is None:
                _warn_once(f"trust:{path}", "trust list: %s is not a readable DER or PEM certificate; ignored", path)
            else:
                found.append((path, certificate))
        return found

    def trusted_by(self, certificate: x509.Certificate) -> Path | None:
        """The file in the trust list that trusts ``certificate``: the certificate itself or its issuer."""
        der = certificate.public_bytes(serialization.Encoding.DER)
        for path, trusted in self.certificates():
            if trusted.public_bytes(serialization.Encoding.DER) == der:
                return path
            if _issued_by(certificate, trusted):
                return path
        return None

    def check(self, certificate: x509.Certificate, endpoint_url: str) -> None:
        """Return if ``certificate`` is trusted and valid now; else save it to ``rejected_dir`` and raise."""
        thumb = thumbprint(certificate)
        if self.trusted_by(certificate) is None:
            rejected = self.reject(certificate)
            where = (
                f"copy {rejected} into {self.directory}"
                if rejected is not None
                else f"put the server's certificate (SHA-1 thumbprint {thumb}) into {self.directory}"
            )
            raise UntrustedServerCertificate(
                f"OPC UA server {endpoint_url} is not trusted: its certificate ({describe(certificate)}) is not "
                f"in the trust list {self.directory}. If it is this server's, {where}",
                thumbprint=thumb,
                rejected_file=rejected,
            )
        if (invalid := _not_valid_now(certificate)) is not None:
            raise UntrustedServerCertificate(
                f"OPC UA server {endpoint_url}: its certificate ({describe(certificate)}) {invalid}; "
                "the server needs a new one, which then has to be trusted",
                thumbprint=thumb,
                rejected_file=None,
            )

    def reject(self, certificate: x509.Certificate) -> Path | None:
        """Write ``certificate`` to ``rejected/<thumbprint>.der`` for someone to check; None if that fails."""
        path = self.rejected_dir / f"{thumbprint(certificate)}.der"
        try:
            self.rejected_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
        except OSError as exc:
            _warn_once(
                f"rejected:{self.rejected_dir}", "cannot save a rejected certificate in %s: %s", self.rejected_dir, exc
            )
            return None
        return path


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    if certificate.issuer != issuer.subject or certificate.subject == issuer.subject:
        return False
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not constraints.ca:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _public_key_info(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _not_valid_now(certificate: x509.Certificate) -> str | None:
    now = datetime.now(UTC)
    if certificate.not_valid_after_utc < now:
        return f"expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if certificate.not_valid_before_utc > now:
        return f"is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (check the clocks)"
    return None


def _trust_dir(security: OpcUaSecurity, where: str = "security") -> Path:
    """The trust directory, which must exist: ConfigError otherwise."""
    assert security.trust_dir is not None, "checked by OpcUaSecurity"
    if not security.trust_dir.is_dir():
        raise ConfigError(
            str(security.trust_dir),
            "the trust directory does not exist; create it (factory edge cert does) and put the "
            "certificates of the servers to trust in it",
            field=f"{where}.trust_dir",
        )
    return security.trust_dir


def _parse_certificate(data: bytes) -> x509.Certificate | None:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        return None


def _read(path: Path, field: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read it: {exc.strerror or exc}", field=field) from exc


def _warn_if_readable_by_others(key_file: Path) -> None:
    try:
        mode = key_file.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _warn_once(
            f"key:{key_file}",
            "the private key %s can be read by other users (mode %o); chmod 600 it",
            key_file,
            stat.S_IMODE(mode),
        )


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


def default_application_uri(hostname: str | None = None) -> str:
    """The application URI ``factory edge cert`` writes unless told another: one per gateway host."""
    return f"urn:{hostname or socket.gethostname()}:smart-factory:edge"
