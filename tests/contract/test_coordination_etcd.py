"""What only etcd needs checked: compare-and-swap under real concurrency (two clients, one
prefix), transactions split under etcd's operation limit, and the epoch fence inside them."""

from __future__ import annotations

import asyncio
from collections import Counter
from uuid import uuid4

import pytest
from aetcd import rpc

from conveyor.coordination.etcd import connect_etcd
from conveyor.coordination.etcd.client import EtcdClient, unavailable_on_loss
from conveyor.coordination.etcd.connection import open_channel, parse_etcd_url
from conveyor.coordination.protocol import Coordination
from conveyor.errors import BackendUnavailable, StaleEpoch
from conveyor.models import Priority, QueueItem
from tests.contract.conftest import ETCD_URL, drop_etcd_prefix
from tests.support.databases import unavailable


async def two_clients() -> tuple[Coordination, Coordination, str]:
    prefix = f"test:{uuid4().hex}:"
    try:
        first = await connect_etcd(ETCD_URL, prefix)
    except BackendUnavailable as exc:
        unavailable(f"etcd at {ETCD_URL}", exc)
    return first, await connect_etcd(ETCD_URL, prefix), prefix


async def drain(coord: Coordination, worker_id: str) -> list[QueueItem]:
    """Fetch until the worker queue is empty (one fetch takes one transaction's worth)."""
    taken: list[QueueItem] = []
    while batch := await coord.worker_queues.fetch(worker_id, 400, 0.05):
        taken += batch
    return taken


async def test_concurrent_enqueues_and_assigns_lose_and_double_nothing() -> None:
    a, b, prefix = await two_clients()
    try:
        items = [QueueItem(f"t{n}", "echo", Priority.NORMAL, f"tenant{n % 3}")
                 for n in range(300)]
        await asyncio.gather(a.queues.enqueue(items[::2]), b.queues.enqueue(items[1::2]))
        assert (await a.queues.lengths())["normal"] == 300
        lease = await a.lease.acquire("s", 30)
        assert lease is not None
        moved = await asyncio.gather(
            a.queues.assign(lease.epoch, [(i, "wa") for i in items]),
            b.queues.assign(lease.epoch, [(i, "wb") for i in reversed(items)]),
        )
        assert sum(moved) == 300
        taken = [*await drain(a, "wa"), *await drain(b, "wb")]
        assert Counter(taken) == Counter(items)
        assert await a.queues.tenant_lengths() == {"high": {}, "normal": {}, "low": {}}
    finally:
        await drop_etcd_prefix(a, prefix)
        await a.close()
        await b.close()


async def test_a_deposed_leader_moves_nothing() -> None:
    a, b, prefix = await two_clients()
    try:
        await a.queues.enqueue([QueueItem("x", "echo", Priority.HIGH)])
        old = await a.lease.acquire("old", 30, min_epoch=6)
        assert old is not None
        await a.lease.release(old)
        new = await b.lease.acquire("new", 30)
        assert new is not None and new.epoch == old.epoch + 1
        with pytest.raises(StaleEpoch):
            await a.queues.assign(old.epoch, [(QueueItem("x", "echo", Priority.HIGH), "w")])
        assert await b.queues.peek(Priority.HIGH, 5) == [QueueItem("x", "echo", Priority.HIGH)]
    finally:
        await drop_etcd_prefix(a, prefix)
        await a.close()
        await b.close()


async def test_a_call_whose_fresh_lease_etcd_forgot_runs_again_with_a_new_one() -> None:
    """etcd that lost its data (or a lease that expired under a stalled process) answers a put
    on a lease it no longer has with NOT_FOUND: the call is run again, granting a fresh lease,
    instead of ending the scheduler with the error."""
    channel = open_channel(parse_etcd_url(ETCD_URL))
    client, key, runs = EtcdClient(channel), f"test:{uuid4().hex}:k".encode(), []

    @unavailable_on_loss
    async def announce() -> None:
        lease = await client.grant(5)
        if not runs:  # the first run's lease vanishes between the grant and the put
            await rpc.LeaseStub(channel).LeaseRevoke(rpc.LeaseRevokeRequest(ID=lease))
        runs.append(lease)
        await client.put(key, b"here", lease)

    try:
        await announce()
        assert len(runs) == 2 and (await client.get(key)) is not None
    finally:
        await client.txn([], [("delete", key)])
        await channel.close()
