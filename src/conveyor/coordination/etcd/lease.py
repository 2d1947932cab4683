"""``LeaderLease`` and ``CancelSignals`` over etcd.

Every live scheduler, leader or standby, announces itself under ``nodes/scheduler/{id}``
(JSON seen + expiry, bound to an etcd lease that collects it later).

The lease is one key (holder, epoch, expiry) beside an ``epoch`` counter that only rises: a
campaign is one transaction comparing both keys' revisions with what it read, so two schedulers
can never both win, and the winner's epoch is above every earlier one (and above the store's
``min_epoch``). Dispatch and reap compare the counter inside their own transactions
(``queues.epoch_compare``), so a deposed leader's move fails atomically.

Cancel flags are keys under ``cancel/``; ``listen`` is a watch on that prefix, not a poll.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from urllib.parse import quote, unquote

import grpc

from conveyor.coordination.etcd.client import Kv, unavailable_on_loss
from conveyor.coordination.etcd.layout import Part
from conveyor.coordination.etcd.plan import run_cas
from conveyor.coordination.protocol import AttemptRef
from conveyor.models import Lease

log = logging.getLogger(__name__)


class EtcdLeaderLease(Part):
    def _live(self, kv: Kv | None) -> Lease | None:
        if kv is None:
            return None
        body = json.loads(kv.value)
        if body["expires"] <= self._clock():
            return None
        return Lease(body["holder"], int(body["epoch"]))

    async def _put(self, lease: Lease, ttl: float) -> tuple[bytes, int]:
        body = {"holder": lease.holder, "epoch": lease.epoch, "expires": self._clock() + ttl}
        return json.dumps(body).encode(), await self._c.grant(2 * ttl)

    @unavailable_on_loss
    async def acquire(self, holder: str, ttl: float, min_epoch: int = 0) -> Lease | None:
        async def attempt() -> tuple[bool, Lease | None]:
            _, (leader, counter) = await self._c.snapshot(
                [(self._l.leader, False, 0), (self._l.epoch, False, 0)]
            )
            if self._live(leader[0] if leader else None) is not None:
                return True, None
            current = int(counter[0].value) if counter else 0
            lease = Lease(holder, max(current, min_epoch) + 1)
            value, gc = await self._put(lease, ttl)
            compares = [("mod", self._l.leader, leader[0].mod_revision if leader else 0),
                        ("mod", self._l.epoch, counter[0].mod_revision if counter else 0)]
            ops = [("put", self._l.epoch, str(lease.epoch).encode(), 0),
                   ("put", self._l.leader, value, gc)]
            return await self._c.txn(compares, ops), lease

        return await run_cas(attempt)

    @unavailable_on_loss
    async def renew(self, lease: Lease, ttl: float) -> bool:
        found = await self._c.get(self._l.leader)
        if self._live(found) != lease or found is None:
            return False
        value, gc = await self._put(lease, ttl)
        return await self._c.txn([("mod", self._l.leader, found.mod_revision)],
                                 [("put", self._l.leader, value, gc)])

    @unavailable_on_loss
    async def release(self, lease: Lease) -> None:
        found = await self._c.get(self._l.leader)
        if found is not None and self._live(found) == lease:
            await self._c.txn([("mod", self._l.leader, found.mod_revision)],
                              [("delete", self._l.leader)])

    @unavailable_on_loss
    async def current(self) -> Lease | None:
        return self._live(await self._c.get(self._l.leader))

    @unavailable_on_loss
    async def publish_status(self, status: dict[str, float], ttl: float) -> None:
        body = {"status": status, "expires": self._clock() + ttl}
        await self._c.put(self._l.status, json.dumps(body).encode(), await self._c.grant(2 * ttl))

    @unavailable_on_loss
    async def status(self) -> dict[str, float]:
        found = await self._c.get(self._l.status)
        if found is None:
            return {}
        body = json.loads(found.value)
        return {} if body["expires"] <= self._clock() else dict(body["status"])

    @unavailable_on_loss
    async def announce(self, holder: str, seen: float, ttl: float) -> None:
        body = {"seen": seen, "expires": self._clock() + ttl}
        await self._c.put(self._l.scheduler_node(holder), json.dumps(body).encode(),
                          await self._c.grant(2 * ttl))

    @unavailable_on_loss
    async def withdraw(self, holder: str) -> None:
        await self._c.txn([], [("delete", self._l.scheduler_node(holder))])

    @unavailable_on_loss
    async def schedulers(self) -> dict[str, float]:
        """Expiry is the timestamp in the value (the etcd lease only collects the key later)."""
        start, now = len(self._l.scheduler_node()), self._clock()
        found = await self._c.range(self._l.scheduler_node(), prefix=True)
        bodies = [(unquote(kv.key[start:].decode()), json.loads(kv.value)) for kv in found]
        return {holder: float(b["seen"]) for holder, b in bodies if b["expires"] > now}


class EtcdCancelSignals(Part):
    #: Waits between re-watches after a lost connection.
    RETRY = 0.5

    @unavailable_on_loss
    async def request(self, attempt: AttemptRef, ttl: float) -> None:
        expires = repr(self._clock() + ttl).encode()
        key = self._l.cancel(quote(attempt.encode(), safe=""))
        await self._c.put(key, expires, await self._c.grant(2 * ttl))

    @unavailable_on_loss
    async def requested(self, attempts: Sequence[AttemptRef]) -> set[AttemptRef]:
        if not attempts:
            return set()
        keys = [self._l.cancel(quote(a.encode(), safe="")) for a in attempts]
        _, found = await self._c.snapshot([(k, False, 0) for k in keys])
        now = self._clock()
        return {a for a, kvs in zip(attempts, found, strict=True)
                if kvs and float(kvs[0].value) > now}

    async def listen(self) -> AsyncIterator[AttemptRef]:
        """Watch ``cancel/``; a lost watch is opened again (flags are the fallback meanwhile)."""
        start = len(self._l.cancel())
        while True:
            try:
                async for key in self._c.watch_puts(self._l.cancel()):
                    yield AttemptRef.decode(unquote(key[start:].decode()))
            except grpc.aio.AioRpcError as exc:
                log.warning("etcd cancel watch lost, watching again: %s", exc.details())
            await asyncio.sleep(self.RETRY)
