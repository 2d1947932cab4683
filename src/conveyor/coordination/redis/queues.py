"""``TaskQueues`` over Redis: a list per priority, the delayed set, dispatch into the worker
queues, the wake token, pause flags and the rate-limit buckets."""

from __future__ import annotations

from collections.abc import Sequence

import redis.exceptions as redis_errors

from conveyor.coordination.keys import Keys
from conveyor.coordination.redis.backend import (
    Backend,
    decode_all,
    stale_epoch,
    unavailable_on_loss,
    wake,
)
from conveyor.models import Priority, QueueItem


class RedisTaskQueues:
    """Priority queues (lists), the delayed set, dispatch into worker queues, the wake token."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend
        self._keys = backend.keys

    @unavailable_on_loss
    async def enqueue(self, items: Sequence[QueueItem]) -> None:
        """RPUSH per priority, the ``queued`` index and the wake token, in one round trip
        (MULTI, so the index never holds an item its list lacks).

        Unlike the in-process dict, a list does not refuse an item that is already queued;
        checking would cost a scan of the queue per item on the hot path. A duplicate is
        harmless: ``assign`` moves one copy at a time, the store's compare-and-set refuses a
        second start of the same attempt.
        """
        if not items:
            return
        by_queue: dict[str, list[str]] = {}
        for item in items:
            by_queue.setdefault(self._keys.queue(item.priority), []).append(item.encode())
        async with self._b.client.pipeline(transaction=True) as pipe:
            for key, members in by_queue.items():
                pipe.rpush(key, *members)
                pipe.sadd(self._keys.queued, *members)
            wake(pipe, self._keys)
            await pipe.execute()

    @unavailable_on_loss
    async def schedule(self, items: Sequence[tuple[QueueItem, float]]) -> None:
        if items:
            await self._b.client.zadd(self._keys.delayed, {i.encode(): due for i, due in items})

    @unavailable_on_loss
    async def promote_due(self, now: float, limit: int) -> int:
        if limit <= 0:
            return 0
        keys = [self._keys.delayed, *self._keys.queues, self._keys.wake, self._keys.queued]
        return int(await self._b.run("promote_due", keys, [repr(now), limit]))

    @unavailable_on_loss
    async def peek(self, priority: Priority, count: int) -> list[QueueItem]:
        if count <= 0:
            return []
        raw = await self._b.client.lrange(self._keys.queue(priority), 0, count - 1)
        return decode_all(raw)

    @unavailable_on_loss
    async def assign(
        self, epoch: int, moves: Sequence[tuple[QueueItem, str]], within: int | None = None
    ) -> int:
        keys = [self._keys.epoch, *self._keys.queues, self._keys.queued]
        keys += [self._keys.worker_queue(worker_id) for _, worker_id in moves]
        args = [str(epoch), str(within or 0), *(item.encode() for item, _ in moves)]
        try:
            return int(await self._b.run("assign", keys, args))
        except redis_errors.ResponseError as exc:
            raise stale_epoch(exc, epoch) or exc from exc

    @unavailable_on_loss
    async def remove(self, items: Sequence[QueueItem]) -> None:
        if not items:
            return
        members = [item.encode() for item in items]
        async with self._b.client.pipeline(transaction=True) as pipe:
            for item, member in zip(items, members, strict=True):
                pipe.lrem(self._keys.queue(item.priority), 1, member)
            pipe.srem(self._keys.queued, *members)
            pipe.zrem(self._keys.delayed, *members)
            await pipe.execute()

    @unavailable_on_loss
    async def lengths(self) -> dict[str, int]:
        async with self._b.client.pipeline(transaction=False) as pipe:
            for priority in Priority:
                pipe.llen(self._keys.queue(priority))
            pipe.zcard(self._keys.delayed)
            sizes = await pipe.execute()
        names = [p.label for p in Priority] + ["delayed"]
        return dict(zip(names, map(int, sizes), strict=True))

    @unavailable_on_loss
    async def tracked(self, items: Sequence[QueueItem]) -> set[str]:
        """One atomic script over every place an item can sit, costing a lookup per item (the
        ``queued`` index, the delayed set) plus the fleet's worker queues, never the backlog.

        Worker queues are read for every worker in the registry index. The in-process backend
        also counts a queue left behind for a worker that is no longer registered; here such an
        item is *not* tracked, so the orphan sweep puts it back in a queue instead of leaving it
        stranded.
        """
        if not items:
            return set()
        keys = [self._keys.queued, self._keys.delayed, self._keys.workers]
        args = [self._keys.worker_prefix, Keys.QUEUE_SUFFIX, Keys.ACTIVE_SUFFIX]
        args += [item.encode() for item in items]
        return set(await self._b.run("tracked", keys, args))

    async def wait_for_work(self, timeout: float) -> None:
        """BLPOP the wake token; every enqueue path pushes one (trimmed to a single token)."""
        wake = self._keys.wake
        await self._b.block(lambda wait: self._b.client.blpop([wake], wait), timeout)

    @unavailable_on_loss
    async def set_paused(self, name: str, paused: bool) -> None:
        if paused:
            await self._b.client.sadd(self._keys.paused, name)
            return
        async with self._b.client.pipeline(transaction=False) as pipe:
            pipe.srem(self._keys.paused, name)
            wake(pipe, self._keys)
            await pipe.execute()

    @unavailable_on_loss
    async def paused(self) -> set[str]:
        return {str(name) for name in await self._b.client.smembers(self._keys.paused)}

    @unavailable_on_loss
    async def inflight(self) -> dict[str, int]:
        """LRANGE of every registered worker's queue and active list, in one pipeline; only
        asked for when some type has a concurrency limit, and bounded by the fleet's slots."""
        ids = [str(w) for w in await self._b.client.zrange(self._keys.workers, 0, -1)]
        async with self._b.client.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.lrange(self._keys.worker_queue(worker_id), 0, -1)
                pipe.lrange(self._keys.worker_active(worker_id), 0, -1)
            replies = await pipe.execute()
        counts: dict[str, int] = {}
        for item in (i for reply in replies for i in decode_all(reply)):
            counts[item.task_type] = counts.get(item.task_type, 0) + 1
        return counts

    @unavailable_on_loss
    async def take_tokens(self, task_type: str, rate: float, wanted: int, now: float) -> int:
        key = self._keys.bucket(task_type)
        return int(await self._b.run("take_tokens", [key], [repr(rate), wanted, repr(now)]))
