"""One way to build an MQTT client from ``BrokerSettings``, so credentials and keepalive are read alike."""

from __future__ import annotations

from typing import Any

import aiomqtt

from core.settings import BrokerSettings

DEFAULT_TIMEOUT_S = 10.0


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
    which read it only from the environment.
    """
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password.get_secret_value() if broker.password else None,
        identifier=identifier,
        clean_session=clean_session,
        keepalive=broker.keepalive_s,
        timeout=timeout_s,
        **options,
    )
