"""The in-process MQTT broker (amqtt) that the demo uses instead of Mosquitto.

It binds to 127.0.0.1 only (amqtt would default to 0.0.0.0) and allows anonymous clients, which
is acceptable only because nothing off this machine can reach it. Production uses Mosquitto
(deploy/mosquitto) or a clustered broker with passwords.
"""

from __future__ import annotations

import logging

from amqtt.broker import Broker

log = logging.getLogger(__name__)


class EmbeddedBroker:
    def __init__(self, host: str, port: int):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the embedded demo broker only binds to loopback, not {host!r}")
        self.host = host
        self.port = port
        self._broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 256}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
            }
        )

    async def __aenter__(self) -> EmbeddedBroker:
        await self._broker.start()
        log.info("embedded MQTT broker listening on %s:%d", self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._broker.shutdown()
