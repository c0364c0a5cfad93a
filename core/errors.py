"""One exception family for the platform, so callers catch exactly the failure they can handle."""

from __future__ import annotations


class FactoryError(Exception):
    """Base class of every error the platform raises on purpose."""


class ConfigError(FactoryError):
    """A configuration or asset-model file is broken.

    The message always names the file, the line (when known), the dotted path of the field and the
    reason, e.g. ``config/factory.yaml:14: workshops[0].lines[1].equipment[2].ideal_cycle_time_s:
    Input should be greater than 0``.
    """

    def __init__(self, file: str, reason: str, *, line: int | None = None, field: str | None = None):
        self.file = file
        self.line = line
        self.field = field
        self.reason = reason
        where = f"{file}:{line}" if line is not None else file
        what = f"{field}: {reason}" if field else reason
        super().__init__(f"{where}: {what}")


class WireFormatError(FactoryError):
    """An uplink message does not follow the wire format; ``reason`` says which field and why."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class UnknownEquipmentError(FactoryError):
    """A sample names equipment that the asset model does not know."""


class StoreError(FactoryError):
    """The time-series store refused a request or returned something unreadable."""


class StoreUnavailable(StoreError):
    """The store could not be reached (connection refused, timeout, 5xx); the request may be retried.

    ``retry_after_s`` is how long the server asked to be left alone (``Retry-After``), when it said.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None):
        self.retry_after_s = retry_after_s
        super().__init__(message)


class StoreRejected(StoreError):
    """The store refused the data itself (HTTP 400 and the like); retrying the same data cannot help."""


class StoreTooLarge(StoreRejected):
    """The request was larger than the store takes (HTTP 413): smaller requests may pass."""


class StartupError(FactoryError):
    """A server the command needs (broker, store) cannot be reached when it starts."""


class BrokerTlsError(FactoryError):
    """The TLS handshake with an MQTT broker failed for a reason retrying cannot mend.

    An unknown CA, a certificate not valid for the host, a broker refusing our client certificate,
    a plain listener on a TLS port: the clients stop with this error instead of reconnecting forever.
    """
