"""``LeaderLease`` over Redis: the scheduler lease with its fencing epoch, the leader's
published duty status, and every live scheduler's announcement (a TTL key each, indexed by a
set that a read prunes of expired members)."""

from __future__ import annotations

from conveyor.coordination.redis.backend import Backend, ms, unavailable_on_loss
from conveyor.models import Lease


def lease_value(lease: Lease) -> str:
    return f"{lease.holder}|{lease.epoch}"


class RedisLeaderLease:
    """``scheduler:leader`` holds ``holder|epoch`` with a PX TTL; ``scheduler:epoch`` only rises."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend
        self._keys = backend.keys

    @unavailable_on_loss
    async def acquire(self, holder: str, ttl: float, min_epoch: int = 0) -> Lease | None:
        keys = [self._keys.leader, self._keys.epoch]
        epoch = await self._b.run("lease_acquire", keys, [holder, ms(ttl), min_epoch])
        return None if epoch is None else Lease(holder, int(epoch))

    @unavailable_on_loss
    async def renew(self, lease: Lease, ttl: float) -> bool:
        args = [lease_value(lease), ms(ttl)]
        return bool(await self._b.run("lease_renew", [self._keys.leader], args))

    @unavailable_on_loss
    async def release(self, lease: Lease) -> None:
        await self._b.run("lease_release", [self._keys.leader], [lease_value(lease)])

    @unavailable_on_loss
    async def current(self) -> Lease | None:
        value = await self._b.client.get(self._keys.leader)
        if value is None:
            return None
        holder, _, epoch = str(value).rpartition("|")
        return Lease(holder, int(epoch))

    @unavailable_on_loss
    async def publish_status(self, status: dict[str, float], ttl: float) -> None:
        key = self._keys.leader_status
        async with self._b.client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if status:
                pipe.hset(key, mapping={name: repr(ts) for name, ts in status.items()})
                pipe.pexpire(key, ms(ttl))
            await pipe.execute()

    @unavailable_on_loss
    async def status(self) -> dict[str, float]:
        found = await self._b.client.hgetall(self._keys.leader_status)
        return {str(name): float(ts) for name, ts in found.items()}

    @unavailable_on_loss
    async def announce(self, holder: str, seen: float, ttl: float) -> None:
        async with self._b.client.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.scheduler_node(holder), repr(seen), px=ms(ttl))
            pipe.sadd(self._keys.scheduler_nodes, holder)
            await pipe.execute()

    @unavailable_on_loss
    async def withdraw(self, holder: str) -> None:
        async with self._b.client.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.scheduler_node(holder))
            pipe.srem(self._keys.scheduler_nodes, holder)
            await pipe.execute()

    @unavailable_on_loss
    async def schedulers(self) -> dict[str, float]:
        holders = sorted(str(h) for h in await self._b.client.smembers(self._keys.scheduler_nodes))
        if not holders:
            return {}
        seen = await self._b.client.mget([self._keys.scheduler_node(h) for h in holders])
        gone = [h for h, at in zip(holders, seen, strict=True) if at is None]
        if gone:  # expired: a scheduler that died without withdrawing
            await self._b.client.srem(self._keys.scheduler_nodes, *gone)
        return {h: float(at) for h, at in zip(holders, seen, strict=True) if at is not None}
