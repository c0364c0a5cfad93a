"""Store implementations and the one function that picks one from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # core.settings imports core.stores.retention, which comes through here
    from core.settings import StoreSettings

    # Not at run time: core.store imports pandas (40 MiB), which the edge agent, a reader of
    # core.settings, never needs.
    from core.store import Store


def open_store(settings: StoreSettings) -> Store:
    """Build the store the settings name. Nothing is connected until the first call."""
    if settings.kind == "influxdb":
        from core.stores.influx import InfluxStore

        return InfluxStore.from_settings(settings)
    from core.stores.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path)
