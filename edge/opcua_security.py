"""OPC UA secure channel and user identity for a collector's client.

STUB (lead, 2026-11-30): only security policy None without a user. The edge-security branch
implements the policies, certificates, trust list and username/password behind this interface.
"""

from __future__ import annotations

from asyncua import Client

from core.errors import ConfigError
from core.settings import OpcUaSecurity


async def apply_security(client: Client, security: OpcUaSecurity | None) -> None:
    """Configure ``client`` (not yet connected) for ``security``; ConfigError when it cannot be done."""
    if security is None or (security.policy == "None" and security.username is None):
        return
    raise ConfigError("edge settings", "OPC UA security is not implemented yet", field="opcua.security")
