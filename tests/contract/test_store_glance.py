"""The console's bounded reads (``store.glance``) on SQLite, MariaDB and PostgreSQL: counts
stop at their cap, the due work is read oldest first, the timings and the window's moves."""

from __future__ import annotations

import time

from conveyor.models import Priority, TaskStatus
from conveyor.store.protocol import Outcome, Pending, Timing
from conveyor.store.sql import SqlStore
from tests.contract.store_support import make_task


async def test_counts_stop_at_the_cap(store: SqlStore) -> None:
    await store.tasks.insert([make_task() for _ in range(5)] + [make_task("other")])
    assert await store.glance.counts(3) == {"PENDING": 4}  # cap + 1: "more than 3"
    assert await store.glance.counts(100) == {"PENDING": 6}
    assert await store.glance.counts(100, tenant="nobody") == {}


async def test_due_work_is_read_oldest_first_per_type_and_priority(store: SqlStore) -> None:
    now = time.time()
    tasks = [make_task(run_at=now - 30), make_task(run_at=now - 10, priority=Priority.HIGH),
             make_task("resize", run_at=now - 20), make_task(run_at=now + 60)]  # not yet due
    await store.tasks.insert(tasks)
    found = sorted(await store.glance.pending(now, 100), key=lambda p: p.oldest_due)
    assert found == [Pending("echo", "normal", 1, now - 30),
                     Pending("resize", "normal", 1, now - 20), Pending("echo", "high", 1, now - 10)]
    assert [p.task_type for p in await store.glance.pending(now, 1)] == ["echo"]  # the oldest


async def test_timings_and_moves_of_the_window(store: SqlStore) -> None:
    now = time.time()
    a, b = make_task(created_at=now - 10, run_at=now - 10), make_task()
    await store.tasks.insert([a, b])
    await store.moves.start([a.id, b.id], "w1", now - 8)
    await store.moves.finish([Outcome(a.id, 1, TaskStatus.SUCCESS)], now - 5)
    await store.moves.finish([Outcome(b.id, 1, TaskStatus.FAILED, retry_at=now + 10)], now)
    timings = await store.glance.timings(10)
    assert timings == [Timing(2.0, 3.0)]  # the retried one is PENDING again, not finished
    assert await store.glance.moves(now - 60) == (2, 1)  # two attempts began, one retried
    assert await store.glance.moves(now - 60, tenant="nobody") == (0, 0)
