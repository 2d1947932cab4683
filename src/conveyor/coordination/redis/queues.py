"""``TaskQueues`` over Redis: a list per priority and tenant with a ring of the tenants that have
work (``lua/fair.lua``), the delayed set, dispatch into the worker queues, the wake token, pause
flags and the rate-limit buckets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis.exceptions as redis_errors

from conveyor.coordination.heads import STRICT_ORDER, Heads
from conveyor.coordination.keys import Keys
from conveyor.coordination.redis.backend import (
    Backend,
    decode_all,
    stale_epoch,
    unavailable_on_loss,
    wake,
)
from conveyor.models import Priority, QueueItem, tenant_field
from conveyor.tenants import DEFAULT_TENANT


class RedisTaskQueues:
    """Fair priority queues (lists and rings), the delayed set, dispatch into worker queues,
    the wake token."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend
        self._keys = backend.keys

    @unavailable_on_loss
    async def enqueue(self, items: Sequence[QueueItem]) -> None:
        """Push each item onto its tenant's queue (its tenant joins the ring if it had no
        work), the ``queued`` index and the wake token, in one script.

        Unlike the in-process dict, a list does not refuse an item that is already queued;
        checking would cost a scan of the queue per item on the hot path. A duplicate is
        harmless: ``assign`` moves one copy at a time, the store's compare-and-set refuses a
        second start of the same attempt.
        """
        if items:
            keys = [*self._keys.fair, self._keys.queued, self._keys.wake]
            await self._b.run("enqueue", keys, [item.encode() for item in items])

    @unavailable_on_loss
    async def schedule(self, items: Sequence[tuple[QueueItem, float]]) -> None:
        if items:
            await self._b.client.zadd(self._keys.delayed, {i.encode(): due for i, due in items})

    @unavailable_on_loss
    async def promote_due(self, now: float, limit: int) -> int:
        if limit <= 0:
            return 0
        keys = [self._keys.delayed, *self._keys.fair, self._keys.wake, self._keys.queued]
        return int(await self._b.run("promote_due", keys, [repr(now), limit]))

    @unavailable_on_loss
    async def peek(
        self, priority: Priority, count: int, weights: Mapping[str, int] | None = None
    ) -> list[QueueItem]:
        if count <= 0:
            return []
        args = [int(priority), count, *weight_args(weights)]
        return decode_all(await self._b.run("peek", self._keys.fair, args))

    @unavailable_on_loss
    async def heads(
        self, depth: int, weights: Mapping[str, int] | None = None, every: bool = False
    ) -> Heads:
        """One script (``lua/heads.lua``) instead of a ``paused`` and a ``peek`` a priority."""
        keys = [*self._keys.fair, self._keys.paused]
        args = [depth, int(every), *weight_args(weights)]
        names, *by_priority = await self._b.run("heads", keys, args)
        paused = {str(name) for name in names}
        items = {
            p: decode_all(raw)
            for p, raw in zip(STRICT_ORDER, by_priority, strict=True)
            if p.label not in paused
        }
        return Heads(paused, items)

    @unavailable_on_loss
    async def assign(
        self, epoch: int, moves: Sequence[tuple[QueueItem, str]], within: int | None = None,
        weights: Mapping[str, int] | None = None,
    ) -> int:
        keys = [self._keys.epoch, *self._keys.fair, self._keys.queued]
        keys += [self._keys.worker_queue(worker_id) for _, worker_id in moves]
        args = [str(epoch), str(within or 0), *weight_args(weights)]
        args += [item.encode() for item, _ in moves]
        try:
            return int(await self._b.run("assign", keys, args))
        except redis_errors.ResponseError as exc:
            raise stale_epoch(exc, epoch) or exc from exc

    @unavailable_on_loss
    async def remove(self, items: Sequence[QueueItem]) -> None:
        if items:
            keys = [*self._keys.fair, self._keys.queued, self._keys.delayed]
            await self._b.run("remove", keys, [item.encode() for item in items])

    @unavailable_on_loss
    async def lengths(self) -> dict[str, int]:
        sizes = {p: sum(n.values()) for p, n in (await self.tenant_lengths()).items()}
        return sizes | {"delayed": int(await self._b.client.zcard(self._keys.delayed))}

    @unavailable_on_loss
    async def tenant_lengths(self) -> dict[str, dict[str, int]]:
        """A length per tenant in each ring, plus the default tenant's queue, which may hold
        items from before the rings (two pipelines; the cost follows the tenants with work)."""
        client, keys = self._b.client, self._keys
        async with client.pipeline(transaction=False) as pipe:
            for priority in Priority:
                pipe.lrange(keys.ring(priority), 0, -1)
            rings = await pipe.execute()
        wanted = [
            (priority, tenant)
            for priority, ring in zip(Priority, rings, strict=True)
            for tenant in [DEFAULT_TENANT, *(str(t) for t in ring if t)]
        ]
        async with client.pipeline(transaction=False) as pipe:
            for priority, tenant in wanted:
                pipe.llen(keys.queue(priority, tenant))
            counts = await pipe.execute()
        found: dict[str, dict[str, int]] = {p.label: {} for p in Priority}
        for (priority, tenant), n in zip(wanted, counts, strict=True):
            if n:
                found[priority.label][tenant] = int(n)
        return found

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
    async def inflight(self) -> dict[tuple[str, str], int]:
        """LRANGE of every registered worker's queue and active list, in one pipeline; only
        asked for when some type has a concurrency limit, and bounded by the fleet's slots."""
        ids = [str(w) for w in await self._b.client.zrange(self._keys.workers, 0, -1)]
        async with self._b.client.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.lrange(self._keys.worker_queue(worker_id), 0, -1)
                pipe.lrange(self._keys.worker_active(worker_id), 0, -1)
            replies = await pipe.execute()
        counts: dict[tuple[str, str], int] = {}
        for item in (i for reply in replies for i in decode_all(reply)):
            key = (item.tenant, item.task_type)
            counts[key] = counts.get(key, 0) + 1
        return counts

    @unavailable_on_loss
    async def take_tokens(
        self, task_type: str, rate: float, wanted: int, now: float, whole: bool = False
    ) -> int:
        key = self._keys.bucket(task_type)
        args = [repr(rate), wanted, repr(now), int(whole)]
        return int(await self._b.run("take_tokens", [key], args))


def weight_args(weights: Mapping[str, int] | None) -> list[str | int]:
    """Tenant weights as script arguments: how many pairs, then (tenant, weight) pairs with
    the tenant as the ring names it; weight 1 is the default and is left out."""
    given = [(tenant_field(t), w) for t, w in (weights or {}).items() if w != 1]
    return [len(given), *(x for pair in given for x in pair)]
