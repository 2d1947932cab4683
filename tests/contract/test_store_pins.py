"""Broadcast copies in the store (docs/design.md §10), on SQLite, MariaDB and PostgreSQL: the
workers PENDING copies are pinned to, and the cancel of a gone worker's copies, in batches,
logged with the epoch, settling their children; other tasks are left alone."""

from __future__ import annotations

import time

from conveyor.models import TaskStatus
from conveyor.store.pins import reason
from conveyor.store.sql import SqlStore
from tests.contract.store_support import make_task
from tests.contract.test_store_deps import child, end, statuses

S = TaskStatus


async def test_a_gone_workers_pending_copies_are_cancelled_in_batches(store: SqlStore) -> None:
    now = time.time()
    mine = [make_task(pinned_worker="w1") for _ in range(3)]
    other = make_task(pinned_worker="w2")
    free = make_task()
    done = make_task(pinned_worker="w3")
    fan_in = child(mine[0])
    await store.tasks.insert([*mine, other, free, done, fan_in])
    await end(store, [done])
    assert await store.pins.pinned_workers() == {"w1", "w2"}
    first = await store.pins.cancel_pinned(["w1"], now, 2, epoch=5)
    assert len([t for t in first.cancelled if t.pinned_worker]) == 2  # the batch
    second = await store.pins.cancel_pinned(["w1"], now, 2, epoch=5)
    assert (await store.pins.cancel_pinned(["w1"], now, 2, epoch=5)).cancelled == []
    assert len(first.cancelled) + len(second.cancelled) == 4  # three copies and the fan-in
    assert await statuses(store, [*mine, other, free, fan_in]) == [
        S.CANCELLED, S.CANCELLED, S.CANCELLED, S.PENDING, S.PENDING, S.CANCELLED]
    got = await store.tasks.get(mine[2].id)
    assert got is not None and got.error == reason("w1") and got.pinned_worker == "w1"
    [*_, last] = await store.tasks.logs(mine[2].id)
    assert (last.to_status, last.epoch) == (S.CANCELLED, 5)
    assert await store.pins.pinned_workers() == {"w2"}
