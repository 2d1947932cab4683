"""``Registry`` over Redis: worker hashes indexed by heartbeat expiry, and the reaping of the
dead.

Clocks: heartbeat expiry is the caller's wall clock, as is ``expired_workers(now)``, so workers
and schedulers need roughly synchronised clocks (NTP), as with any TTL-based registry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace

import redis.exceptions as redis_errors
from redis.typing import EncodableT, FieldT

from conveyor.coordination.keys import Keys
from conveyor.coordination.protocol import Reaped
from conveyor.coordination.redis.backend import (
    Backend,
    decode_all,
    ms,
    stale_epoch,
    unavailable_on_loss,
    wake,
)
from conveyor.models import WorkerInfo

log = logging.getLogger(__name__)


def info_to_hash(info: WorkerInfo) -> dict[FieldT, EncodableT]:
    return {
        "worker_id": info.worker_id,
        "host": info.host,
        "pid": info.pid,
        "capacity": info.capacity,
        "types": json.dumps(list(info.types)),
        "weight": repr(info.weight),
        "started_at": repr(info.started_at),
        "last_heartbeat": repr(info.last_heartbeat),
        "draining": int(info.draining),
        "prefetch": info.prefetch,
    }


def info_from_hash(fields: dict[str, str], load: int) -> WorkerInfo:
    return WorkerInfo(
        worker_id=fields["worker_id"],
        host=fields["host"],
        pid=int(fields["pid"]),
        capacity=int(fields["capacity"]),
        types=tuple(json.loads(fields["types"])),
        weight=float(fields["weight"]),
        started_at=float(fields["started_at"]),
        last_heartbeat=float(fields["last_heartbeat"]),
        load=load,
        draining=fields["draining"] == "1",
        prefetch=int(fields.get("prefetch", 0)),
    )


class RedisRegistry:
    """Workers: a hash each, indexed in a sorted set scored by heartbeat expiry.

    The index decides liveness (``score > now``); the hash lives twice as long so the listing
    never loses a worker that is still indexed as live to a TTL that fired a moment early.
    The hash also records the name the worker's connections carry, so ``disconnected`` can
    tell a worker whose process is gone (its connections closed) before its TTL runs out.
    """

    def __init__(self, backend: Backend) -> None:
        self._b = backend
        self._keys = backend.keys
        self._decoded: dict[tuple[str, ...], WorkerInfo] = {}  # last live hashes, decoded

    @unavailable_on_loss
    async def heartbeat(self, info: WorkerInfo, ttl: float) -> None:
        key = self._keys.worker(info.worker_id)
        fields = info_to_hash(info)
        if self._b.client_name:
            fields["client"] = self._b.client_name
        now = self._b.clock()
        async with self._b.client.pipeline(transaction=True) as pipe:
            pipe.zscore(self._keys.workers, info.worker_id)
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, ms(2 * ttl))
            pipe.zadd(self._keys.workers, {info.worker_id: now + ttl})
            expired, *_ = await pipe.execute()
        if expired is None or float(expired) <= now:  # joined: one more round trip, once
            async with self._b.client.pipeline(transaction=False) as pipe:
                wake(pipe, self._keys)
                await pipe.execute()

    @unavailable_on_loss
    async def live_workers(self) -> list[WorkerInfo]:
        """One script (``lua/live.lua``): the dispatcher asks on every pass, and the index,
        the hashes and the loads read together cost one round trip instead of two.

        A hash changes only with its worker's heartbeat, but is read on every pass: each is
        decoded once and kept until it changes (or its worker is no longer live), and a pass
        only sets the load, so a pass over a hundred workers does not parse a hundred hashes.
        """
        k = self._keys
        args = [repr(self._b.clock()), k.worker_prefix, Keys.QUEUE_SUFFIX, Keys.ACTIVE_SUFFIX]
        replies = await self._b.run("live", [k.workers], args)
        decoded: dict[tuple[str, ...], WorkerInfo] = {}
        live = []
        for flat, queued, active in replies:
            if not flat:
                continue
            key = tuple(flat)
            info = self._decoded.get(key)
            if info is None:
                info = info_from_hash(dict(zip(flat[::2], flat[1::2], strict=True)), 0)
            decoded[key] = info
            load = int(queued) + int(active)
            live.append(replace(info, load=load) if load else info)
        self._decoded = decoded
        return live

    @unavailable_on_loss
    async def expired_workers(self, now: float) -> list[str]:
        index = await self._b.client.zrangebyscore(self._keys.workers, "-inf", repr(now))
        return [str(worker_id) for worker_id in index]

    @unavailable_on_loss
    async def disconnected(self, worker_ids: Sequence[str]) -> set[str]:
        """Those of these workers that recorded a connection name and hold no connection under
        it now (``CLIENT LIST``). A worker that recorded none, or a server that refuses
        ``CLIENT LIST`` (an ACL), is never reported: only its TTL decides."""
        if not worker_ids:
            return set()
        async with self._b.client.pipeline(transaction=False) as pipe:
            for worker_id in worker_ids:
                pipe.hget(self._keys.worker(worker_id), "client")
            names = await pipe.execute()
        claimed = {w: str(n) for w, n in zip(worker_ids, names, strict=True) if n}
        if not claimed:
            return set()
        try:
            clients = await self._b.client.client_list()
        except redis_errors.ResponseError as exc:
            log.warning("cannot list Redis clients (%s); dead workers wait for their TTL", exc)
            return set()
        connected = {c.get("name") for c in clients}
        return {w for w, name in claimed.items() if name not in connected}

    @unavailable_on_loss
    async def reap(self, epoch: int, worker_id: str) -> Reaped:
        k = self._keys
        keys = [
            k.epoch,
            k.workers,
            k.worker(worker_id),
            k.worker_queue(worker_id),
            k.worker_active(worker_id),
            *k.fair,
            k.wake,
            k.queued,
        ]
        try:
            queued, active = await self._b.run("reap", keys, [str(epoch), worker_id])
        except redis_errors.ResponseError as exc:
            raise stale_epoch(exc, epoch) or exc from exc
        return Reaped(worker_id, decode_all(queued), decode_all(active))

    @unavailable_on_loss
    async def deregister(self, worker_id: str) -> None:
        k = self._keys
        async with self._b.client.pipeline(transaction=True) as pipe:
            pipe.zrem(k.workers, worker_id)
            pipe.delete(k.worker(worker_id), k.worker_queue(worker_id), k.worker_active(worker_id),
                        k.drain(worker_id))
            await pipe.execute()

    @unavailable_on_loss
    async def request_drain(self, worker_id: str, started_at: float, ttl: float) -> None:
        await self._b.client.set(self._keys.drain(worker_id), repr(started_at), px=ms(ttl))

    @unavailable_on_loss
    async def drain_requested(self, worker_id: str) -> float | None:
        found = await self._b.client.get(self._keys.drain(worker_id))
        return None if found is None else float(found)
