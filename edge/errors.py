"""Errors of the edge room, in the platform's one exception family."""

from __future__ import annotations

from core.errors import FactoryError


class UnusableReading(FactoryError):
    """A reading cannot become a canonical sample; ``reason`` says why. It is counted, not forwarded."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class UnmappedState(UnusableReading):
    """A device state code that the source's state map does not know; no state is invented for it."""

    def __init__(self, code: str):
        self.code = code
        super().__init__(f"state code {code!r} is not in the state map")


class SampleBufferError(FactoryError):
    """The local sample buffer cannot be read or written (disk full, file corrupt, ...)."""
