"""Ingest: uplink batches from the broker, validated, mapped to the asset tree and written to the store.

Bad input goes to the dead-letter store with its reason and never stops the stream.
"""

from ingest.deadletter import DeadLetter, DeadLetterStore
from ingest.service import IngestService

__all__ = ["DeadLetter", "DeadLetterStore", "IngestService"]
