"""``WorkerQueues`` over Redis: each worker's queue and active list."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from conveyor.coordination.redis.backend import (
    LOST,
    Backend,
    decode_all,
    unavailable_on_loss,
)
from conveyor.models import QueueItem

log = logging.getLogger(__name__)


class RedisWorkerQueues:
    """A worker's queue and active list; fetching is a script, waiting a BLMOVE into the active
    list."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend
        self._keys = backend.keys

    async def fetch(self, worker_id: str, count: int, timeout: float) -> list[QueueItem]:
        """Take up to ``count`` items, waiting up to ``timeout`` for the first.

        The ``fetch`` script moves a batch to the active list in one round trip. An idle
        worker's wait is ``BLMOVE queue active``: the first item to arrive is moved and
        returned by the wake-up itself, alone (the rest of its batch comes with the next
        fetch), so work sent to an idle worker starts a round trip sooner. A reply lost with
        the connection leaves the item in the active list, as a lost ``fetch`` reply does: the
        reconciler puts it back in the queue.
        """
        if count <= 0:
            return []
        taken = await self._take(worker_id, count)
        if taken or timeout <= 0 or self._b.closing.is_set():
            return taken
        queue, active = self._keys.worker_queue(worker_id), self._keys.worker_active(worker_id)
        head = await self._b.block(lambda wait: self._move_blocking(queue, active, wait), timeout)
        return [] if head is None else [QueueItem.decode(head)]

    async def _move_blocking(self, queue: str, active: str, wait: float) -> str | None:
        """Wait for the queue's head and move it to the active list's tail (``BLMOVE``)."""
        # redis-py types the timeout as int; Redis >= 6 takes fractions of a second.
        command = self._b.client.execute_command
        head: str | None = await command(  # type: ignore[no-untyped-call]
            "BLMOVE", queue, active, "LEFT", "RIGHT", wait
        )
        return head

    async def _take(self, worker_id: str, count: int) -> list[QueueItem]:
        keys = [self._keys.worker_queue(worker_id), self._keys.worker_active(worker_id)]
        try:
            return decode_all(await self._b.run("fetch", keys, [count]))
        except LOST as exc:
            log.warning("redis fetch failed for worker %s: %s", worker_id, exc)
            return []

    @unavailable_on_loss
    async def active(self, worker_id: str) -> list[QueueItem]:
        return decode_all(await self._b.client.lrange(self._keys.worker_active(worker_id), 0, -1))

    @unavailable_on_loss
    async def ack(self, worker_id: str, items: Sequence[QueueItem]) -> None:
        if not items:
            return
        # One script for the batch: a pipeline packed an LREM per item, a good part of a
        # finish's CPU; the script also leaves the wake token (capacity was freed) when work
        # is queued.
        keys = [self._keys.worker_active(worker_id), self._keys.wake, self._keys.queued]
        await self._b.run("ack", keys, [item.encode() for item in items])

    @unavailable_on_loss
    async def hand_back(self, worker_id: str) -> list[QueueItem]:
        keys = [
            self._keys.worker_queue(worker_id), *self._keys.fair, self._keys.wake,
            self._keys.queued,
        ]
        return decode_all(await self._b.run("hand_back", keys, []))
