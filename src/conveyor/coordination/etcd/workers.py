"""``WorkerQueues`` and ``Registry`` over etcd: a worker's queue and active list as ordered
keys (fetch is one transaction, its wait a watch), registry entries bound to etcd leases, and
the epoch-fenced reap that puts a dead worker's queue back in one transaction."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from urllib.parse import unquote

from conveyor.coordination.etcd.client import (
    TXN_ITEMS,
    TXN_READS,
    Compare,
    EtcdClient,
    Op,
    chunks,
    unavailable_on_loss,
)
from conveyor.coordination.etcd.layout import Layout, Part
from conveyor.coordination.etcd.plan import Plan, run_cas
from conveyor.coordination.etcd.queues import check_epoch, decode_values, epoch_compare
from conveyor.coordination.protocol import Reaped
from conveyor.models import QueueItem, WorkerInfo


async def push_back(
    client: EtcdClient, layout: Layout, worker_id: str, extra: Sequence[Compare] = ()
) -> tuple[Plan, list[QueueItem]]:
    """A plan that moves a worker's untaken items back to their queues (and wakes the
    dispatcher), each worker queue key compared so a concurrent fetch makes it retry."""
    waiting = await client.range(layout.worker_queue(worker_id), prefix=True, limit=TXN_ITEMS)
    items = decode_values(waiting)
    plan = Plan(client, layout)
    await plan.load(items)
    plan.compares += [*extra, *(("mod", kv.key, kv.mod_revision) for kv in waiting)]
    plan.ops += [("delete", kv.key) for kv in waiting]
    for queued in items:
        plan.push(queued)
    if items:
        plan.wake()
    return plan, items


class EtcdWorkerQueues(Part):
    async def fetch(self, worker_id: str, count: int, timeout: float) -> list[QueueItem]:
        """Move up to ``count`` items (at most ``TXN_ITEMS``, one transaction's worth) to the
        active list in one transaction; while the queue is empty, watch it (from the revision
        read) until ``timeout``."""
        if count <= 0:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        queue = self._l.worker_queue(worker_id)
        while True:
            revision, [waiting] = await self._c.snapshot([(queue, True, min(count, TXN_ITEMS))])
            if waiting:
                ops: list[Op] = []
                for kv in waiting:
                    active = self._l.worker_active(worker_id) + self._l.seq().encode()
                    ops += [("delete", kv.key), ("put", active, kv.value, 0)]
                compares: list[Compare] = [("mod", kv.key, kv.mod_revision) for kv in waiting]
                if await self._c.txn(compares, ops):
                    return decode_values(waiting)
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            await self._c.wait_change(queue, True, revision, remaining)

    @unavailable_on_loss
    async def active(self, worker_id: str) -> list[QueueItem]:
        return decode_values(await self._c.range(self._l.worker_active(worker_id), prefix=True))

    @unavailable_on_loss
    async def ack(self, worker_id: str, items: Sequence[QueueItem]) -> None:
        if not items:
            return
        held = await self._c.range(self._l.worker_active(worker_id), prefix=True)
        done = {i.encode().encode() for i in items}
        ops: list[Op] = [("delete", kv.key) for kv in held if kv.value in done]
        for part in chunks(ops, TXN_READS):
            await self._c.txn([], part)
        await self._c.put(self._l.wake, b"1")

    @unavailable_on_loss
    async def hand_back(self, worker_id: str) -> list[QueueItem]:
        return await hand_back_all(self._c, self._l, worker_id)


async def hand_back_all(
    client: EtcdClient, layout: Layout, worker_id: str, epoch: int | None = None
) -> list[QueueItem]:
    """One transaction per ``TXN_ITEMS`` items, until the worker queue is empty; with
    ``epoch`` (a reap) each is fenced by it, and a failed fence raises ``StaleEpoch``."""
    fence = [] if epoch is None else [epoch_compare(layout, epoch)]

    async def attempt() -> tuple[bool, list[QueueItem]]:
        plan, items = await push_back(client, layout, worker_id, fence)
        done = await plan.commit()
        if not done and epoch is not None:
            await check_epoch(client, layout, epoch)
        return done, items

    moved: list[QueueItem] = []
    while step := await run_cas(attempt):
        moved += step
    return moved


class EtcdRegistry(Part):
    @unavailable_on_loss
    async def heartbeat(self, info: WorkerInfo, ttl: float) -> None:
        """The entry carries its expiry (sub-second TTLs are exact) and an etcd lease, so a
        worker that is never reaped still disappears from etcd on its own."""
        now = self._clock()
        expires = now + ttl
        body = dataclasses.asdict(info) | {"expires": expires}
        lease = await self._c.grant(2 * max(ttl, 0.0))
        index = self._l.worker_index(info.worker_id)
        known = await self._c.get(index)
        ops: list[Op] = [
            ("put", self._l.node(info.worker_id), json.dumps(body).encode(), lease),
            ("put", index, repr(expires).encode(), 0),
        ]
        if known is None or float(known.value) <= now:  # joined: wake the dispatcher
            ops.append(("put", self._l.wake, b"1", 0))
        await self._c.txn([], ops)

    @unavailable_on_loss
    async def live_workers(self) -> list[WorkerInfo]:
        now = self._clock()
        _, (nodes, places) = await self._c.snapshot(
            [(self._l.k("nodes/worker/"), True, 0), (self._l.worker_all(), True, 0)]
        )
        load: dict[bytes, int] = {}
        for kv in places:
            owner = kv.key[len(self._l.worker_all()):].split(b"/", 1)[0]
            load[owner] = load.get(owner, 0) + 1
        live = []
        for kv in nodes:
            body = json.loads(kv.value)
            if body.pop("expires") > now:
                body["types"] = tuple(body["types"])
                owner = kv.key[len(self._l.k("nodes/worker/")):]
                live.append(WorkerInfo(**body | {"load": load.get(owner, 0)}))
        return live

    @unavailable_on_loss
    async def expired_workers(self, now: float) -> list[str]:
        index = await self._c.range(self._l.worker_index(), prefix=True)
        start = len(self._l.worker_index())
        return [unquote(kv.key[start:].decode()) for kv in index if float(kv.value) <= now]

    async def disconnected(self, worker_ids: Sequence[str]) -> set[str]:
        """etcd cannot tell a dead connection from a quiet one: only the expiry decides."""
        return set()

    @unavailable_on_loss
    async def reap(self, epoch: int, worker_id: str) -> Reaped:
        """The worker's queue goes back in fenced transactions of ``TXN_ITEMS``; then one fenced
        transaction forgets the worker and its active list, returned for the store to decide."""
        await check_epoch(self._c, self._l, epoch)
        fence = epoch_compare(self._l, epoch)
        queued = await hand_back_all(self._c, self._l, worker_id, epoch)
        running = await self._c.range(self._l.worker_active(worker_id), prefix=True)
        if not await self._c.txn([fence], self._forget(worker_id)):
            await check_epoch(self._c, self._l, epoch)
        return Reaped(worker_id, queued, decode_values(running))

    def _forget(self, worker_id: str) -> list[Op]:
        return [("delete_prefix", self._l.worker_all(worker_id)),
                ("delete", self._l.node(worker_id)),
                ("delete", self._l.worker_index(worker_id)),
                ("delete", self._l.drain(worker_id))]

    @unavailable_on_loss
    async def deregister(self, worker_id: str) -> None:
        await self._c.txn([], self._forget(worker_id))

    @unavailable_on_loss
    async def request_drain(self, worker_id: str, started_at: float, ttl: float) -> None:
        lease = await self._c.grant(ttl)
        await self._c.put(self._l.drain(worker_id), repr(started_at).encode(), lease)

    @unavailable_on_loss
    async def drain_requested(self, worker_id: str) -> float | None:
        found = await self._c.get(self._l.drain(worker_id))
        return None if found is None else float(found.value)

