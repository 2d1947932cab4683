"""The store contract for the task aggregates, on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import time

from conveyor.models import TaskStatus
from conveyor.store.protocol import Outcome
from conveyor.store.sql import SqlStore
from tests.contract.store_support import make_task


async def test_counts_and_recent_rates(store: SqlStore) -> None:
    now = time.time()
    old, a, b = make_task(created_at=now - 100), make_task(), make_task("other")
    await store.tasks.insert([old, a, b])
    await store.moves.start([a.id, old.id], "w1", now)
    await store.moves.finish([Outcome(a.id, 1, TaskStatus.SUCCESS)], now)
    await store.moves.finish([Outcome(old.id, 1, TaskStatus.FAILED)], now - 50)
    assert await store.stats.count_by_status() == {
        ("echo", "SUCCESS"): 1, ("echo", "FAILED"): 1, ("other", "PENDING"): 1,
    }
    assert await store.stats.recent(now - 10) == (2, {"SUCCESS": 1})
