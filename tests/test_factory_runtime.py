"""serve_until_stopped: services run until SIGTERM, or until a supervised one dies, whose error is raised."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Self

import pytest

from core.errors import BrokerTlsError
from factory.runtime import serve_until_stopped


class Service:
    def __init__(self, failure: BaseException | None = None):
        self.failure = failure
        self.entered = self.left = False

    async def __aenter__(self) -> Self:
        self.entered = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.left = True


class SupervisedService(Service):
    async def supervise(self) -> None:
        await asyncio.sleep(0.05)
        if self.failure is not None:
            raise self.failure
        await asyncio.Event().wait()


async def test_services_run_until_sigterm_and_are_all_left() -> None:
    services = (Service(), SupervisedService())
    asyncio.get_running_loop().call_later(0.2, os.kill, os.getpid(), signal.SIGTERM)
    async with asyncio.timeout(10):
        await serve_until_stopped(*services)
    assert all(s.entered and s.left for s in services)


async def test_a_supervised_service_that_dies_ends_the_wait_with_its_error_after_every_service_is_left() -> None:
    services = (Service(), SupervisedService(BrokerTlsError("TLS handshake with MQTT broker x:8883 failed: …")))
    with pytest.raises(BrokerTlsError, match="TLS handshake"):
        async with asyncio.timeout(10):
            await serve_until_stopped(*services)
    assert all(s.entered and s.left for s in services)
