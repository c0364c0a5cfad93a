"""Reading the edge's uplink in tests: every batch a subscribed client receives, decoded as ingest would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiomqtt

from core.wire import DecodedBatch, decode_batch


@contextlib.asynccontextmanager
async def decoded_batches(client: aiomqtt.Client) -> AsyncIterator[list[DecodedBatch]]:
    """The batches ``client`` receives from now on (it has subscribed), decoded, in arrival order."""
    batches: list[DecodedBatch] = []

    async def collect() -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            batches.append(decode_batch(message.payload))

    task = asyncio.create_task(collect())
    try:
        yield batches
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
