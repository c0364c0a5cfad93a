"""Store implementations and the one function that picks one from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.store import Store

if TYPE_CHECKING:  # core.settings imports core.stores.retention, which comes through here
    from core.settings import StoreSettings


def open_store(settings: StoreSettings) -> Store:
    """Build the store the settings name. Nothing is connected until the first call."""
    if settings.kind == "influxdb":
        from core.stores.influx import InfluxStore

        return InfluxStore.from_settings(settings)
    from core.stores.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path)
