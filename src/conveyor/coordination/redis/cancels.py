"""``CancelSignals`` over Redis: a flag per cancelled attempt, announced on a pub/sub channel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

from conveyor.coordination.protocol import AttemptRef
from conveyor.coordination.redis.backend import (
    LOST,
    Backend,
    ms,
    reconnect_delays,
    unavailable_on_loss,
)

log = logging.getLogger(__name__)


class RedisCancelSignals:
    """A flag per attempt (``task:cancel:{id}:{attempt}`` with TTL) plus a pub/sub message
    (``{id}:{attempt}``) for speed."""

    #: How long ``listen`` waits for one message before checking the connection again.
    POLL = 1.0

    def __init__(self, backend: Backend) -> None:
        self._b = backend
        self._keys = backend.keys

    @unavailable_on_loss
    async def request(self, attempt: AttemptRef, ttl: float) -> None:
        async with self._b.client.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.cancel(attempt.task_id, attempt.attempt), "1", px=ms(ttl))
            pipe.publish(self._keys.cancel_channel, attempt.encode())
            await pipe.execute()

    @unavailable_on_loss
    async def requested(self, attempts: Sequence[AttemptRef]) -> set[AttemptRef]:
        if not attempts:
            return set()
        flags = await self._b.client.mget([self._keys.cancel(*a) for a in attempts])
        return {a for a, flag in zip(attempts, flags, strict=True) if flag is not None}

    async def listen(self) -> AsyncIterator[AttemptRef]:
        """Yield cancelled attempts for as long as the caller iterates, resubscribing after a lost
        connection. Messages published while disconnected are missed; the flags cover them."""
        delays = reconnect_delays()
        while not self._b.closing.is_set():
            pubsub = self._b.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._keys.cancel_channel)
                delays.reset()
                while not self._b.closing.is_set():
                    message = await pubsub.get_message(timeout=self.POLL)
                    if message is not None and message["type"] == "message":
                        try:
                            yield AttemptRef.decode(str(message["data"]))
                        except ValueError:
                            log.warning("ignoring malformed cancel message %r", message["data"])
            except LOST as exc:
                log.warning("redis cancel subscription lost, resubscribing: %s", exc)
                await asyncio.sleep(delays.next())
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
