"""One way to build an MQTT client from ``BrokerSettings``, so credentials, keepalive and TLS are read alike.

TLS (``broker.tls``) is checked here for every client: the edge uplink, ingest, the meter source
and the simulators. A CA, certificate or key file that is missing or unreadable is a ``ConfigError``
naming the file; a handshake that fails for a reason retrying cannot mend (an unknown CA, a
certificate not valid for the host, our certificate refused) is a ``BrokerTlsError``, which the
reconnect loops do not catch: they catch ``aiomqtt.MqttError`` only.
"""

from __future__ import annotations

import logging
import re
import ssl
from pathlib import Path
from typing import Any, Self

import aiomqtt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from core.errors import BrokerTlsError, ConfigError
from core.settings import BrokerSettings

DEFAULT_TIMEOUT_S = 10.0
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}

log = logging.getLogger(__name__)
_warned_insecure: set[tuple[str, int]] = set()


def mqtt_client(
    broker: BrokerSettings,
    *,
    identifier: str,
    clean_session: bool | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    **options: Any,
) -> aiomqtt.Client:
    """An aiomqtt client for ``broker``; ``timeout_s`` bounds connect, subscribe, publish and disconnect.

    ``options`` go to aiomqtt unchanged (e.g. ``queue_type``). The password comes from the settings,
    which read it only from the environment. With ``broker.tls`` the TLS files are read now (so a
    renewed certificate is used from the next connection on) and a broken one raises ``ConfigError``.
    """
    return _BrokerClient(
        broker,
        username=broker.username,
        password=broker.password.get_secret_value() if broker.password else None,
        identifier=identifier,
        clean_session=clean_session,
        keepalive=broker.keepalive_s,
        timeout=timeout_s,
        tls_context=tls_context(broker) if broker.tls is not None else None,
        **options,
    )


def check_broker(broker: BrokerSettings) -> None:
    """Raise ``ConfigError`` now if the broker's TLS files cannot be used, rather than at the first connection."""
    if broker.tls is not None:
        tls_context(broker)


def tls_context(broker: BrokerSettings) -> ssl.SSLContext:
    """The client's TLS context: at least TLS 1.2, the broker's certificate and host name verified.

    ``tls.insecure`` turns verification off (and says so once per broker, as a warning).
    """
    tls = broker.tls
    assert tls is not None, "tls_context needs broker.tls"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED by default
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    if tls.ca_file is not None:
        _read(tls.ca_file, "tls.ca_file")
        try:
            context.load_verify_locations(cafile=tls.ca_file)
        except ssl.SSLError as exc:
            reason = f"no PEM CA certificate in it ({exc.reason})"
            raise ConfigError(str(tls.ca_file), reason, field="tls.ca_file") from exc
    else:
        context.load_default_certs()
    if tls.cert_file is not None and tls.key_file is not None:
        _load_client_certificate(context, tls.cert_file, tls.key_file)
    if tls.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if (broker.host, broker.port) not in _warned_insecure:
            _warned_insecure.add((broker.host, broker.port))
            log.warning(
                "broker.tls.insecure: the certificate of MQTT broker %s:%d is not checked; "
                "anyone on the path can pose as the broker (tests and development only)",
                broker.host,
                broker.port,
            )
    return context


def _read(path: Path, field: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read it: {exc.strerror or exc}", field=field) from exc


def _load_client_certificate(context: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
    # Checked with cryptography first so the message names the file at fault (ssl says "PEM lib"),
    # and so an encrypted key is refused here instead of OpenSSL asking for its pass phrase on a tty.
    try:
        x509.load_pem_x509_certificate(_read(cert_file, "tls.cert_file"))
    except ValueError as exc:
        raise ConfigError(str(cert_file), f"not a PEM certificate ({exc})", field="tls.cert_file") from exc
    try:
        serialization.load_pem_private_key(_read(key_file, "tls.key_file"), password=None)
    except TypeError as exc:  # "Password was not given but private key is encrypted"
        raise ConfigError(
            str(key_file), "the private key is encrypted; give it unencrypted, readable by this user only",
            field="tls.key_file",
        ) from exc  # fmt: skip
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(str(key_file), f"not a PEM private key ({exc})", field="tls.key_file") from exc
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_pass_phrase)
    except ssl.SSLError as exc:
        raise ConfigError(
            str(key_file), f"does not go with the certificate {cert_file} ({exc.reason})", field="tls.key_file"
        ) from exc


def _no_pass_phrase() -> bytes:
    return b""


class _BrokerClient(aiomqtt.Client):
    """An aiomqtt client whose connect says why a TLS handshake failed, and stops the reconnecting."""

    def __init__(self, broker: BrokerSettings, **options: Any):
        super().__init__(broker.host, broker.port, **options)
        self.broker_name = f"{broker.host}:{broker.port}"
        tls = broker.tls
        ca_file = tls.ca_file if tls is not None else None
        self.trusted = f"tls.ca_file {ca_file}" if ca_file is not None else "the system's CA certificates"
        self.identity = str(tls.cert_file) if tls is not None and tls.cert_file is not None else None
        # With TLS 1.3 the broker judges our certificate after the handshake: its alert reaches paho on
        # the first read, which paho only logs before aiomqtt times out. Listened to while connecting
        # (through aiomqtt's paho client, _client: aiomqtt offers no other way), to say why.
        self._tls = tls is not None
        self._alert: str | None = None

    def _lost_while_connecting(self) -> BaseException | None:
        lost = self._disconnected
        return lost.exception() if lost.done() and not lost.cancelled() else None

    def _on_paho_log(self, client: Any, userdata: Any, level: int, text: str) -> None:
        if (match := SSL_ALERT.search(text)) is not None:
            self._alert = match.group(1)

    async def __aenter__(self) -> Self:
        self._alert = None
        if self._tls:
            self._client.on_log = self._on_paho_log
        try:
            return await super().__aenter__()
        except aiomqtt.MqttError as exc:
            # aiomqtt raises MqttError(str(ssl_error)) "from None": the ssl error is still the context.
            reason = handshake_failure(exc.__context__, self.trusted, self.identity)
            if reason is None:  # an alert met while writing CONNECT: aiomqtt keeps it there, unlogged
                reason = handshake_failure(self._lost_while_connecting(), self.trusted, self.identity)
            if reason is None and self._alert is not None:
                reason = refused_certificate(self._alert, self.identity)
            if reason is None:
                raise
            raise BrokerTlsError(f"TLS handshake with MQTT broker {self.broker_name} failed: {reason}") from exc
        finally:
            self._client.on_log = None  # paho formats every message it logs for on_log: not per packet


SSL_ALERT = re.compile(r"\[SSL: \w*ALERT\w*\] ([^(]+?) \(")


def refused_certificate(alert: str, identity: str | None) -> str:
    """The broker's TLS alert, said for the one who configures the client."""
    if "certificate" not in alert and "unknown ca" not in alert:
        if "protocol version" in alert:
            return f"the broker and we share no TLS version ({alert}; we take tls.min_version and newer)"
        return f"the broker ended the handshake ({alert})"
    if identity is None:
        return f"the broker refused us ({alert}): it asks for a client certificate (tls.cert_file, tls.key_file)"
    return f"the broker refused our client certificate tls.cert_file {identity} ({alert})"


def handshake_failure(error: BaseException | None, trusted: str, identity: str | None) -> str | None:
    """What a failed handshake means for whoever configures it; None when it may pass on a retry.

    The broker going away mid-handshake (EOF, reset, timeout) may mend itself; a certificate that
    does not verify, or a broker that refuses ours, does not.
    """
    if isinstance(error, ssl.SSLCertVerificationError):
        code, message = error.verify_code, error.verify_message
        if code in (18, 19, 20, 21):  # self-signed, or no issuer we trust
            return f"the broker's certificate is not signed by a CA in {trusted}: {message}"
        if code == 10:
            return f"the broker's certificate has expired: {message}"
        if code in (62, 64):  # host name or IP address mismatch
            return f"the broker's certificate is not valid for this host (broker.host): {message}"
        return f"the broker's certificate does not verify: {message}"
    if isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError | ssl.SSLWantReadError):
        return None
    if isinstance(error, ssl.SSLError):
        reason = error.reason or str(error)
        if reason == "WRONG_VERSION_NUMBER":
            return "the port does not speak TLS (a plain MQTT listener?) or only an older TLS version"
        if (match := SSL_ALERT.search(str(error))) is not None:
            return refused_certificate(match.group(1), identity)
        return reason
    return None
