"""The store contract for the sweeps' scans, on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import time

from conveyor.store.sql import SqlStore
from tests.contract.store_support import make_task


async def test_overdue_processing_and_pending_page(store: SqlStore) -> None:
    t = make_task(timeout=1.0)
    u = make_task()
    await store.tasks.insert([t, u])
    now = time.time()
    await store.moves.start([t.id], "w9", now)
    assert [x.id for x in await store.sweeps.overdue(now + 10, 1.0, 10)] == [t.id]
    assert await store.sweeps.overdue(now + 1.5, 1.0, 10) == []
    assert [x.id for x in await store.sweeps.processing_on("w9")] == [t.id]
    pending = await store.sweeps.pending_page(None, now + 100, 10)
    assert [x.id for x in pending] == [u.id]
