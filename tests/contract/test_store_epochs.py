"""The store contract for scheduler epochs, on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import time

import pytest

from conveyor.errors import Conflict
from conveyor.models import TaskStatus
from conveyor.store.protocol import Outcome
from conveyor.store.sql import SqlStore
from tests.contract.store_support import make_task


async def test_max_epoch_covers_leases_and_logged_moves(store: SqlStore) -> None:
    assert await store.epochs.max_epoch() == 0
    await store.epochs.record_epoch(3, "s1", 1.0)
    assert await store.epochs.max_epoch() == 3
    t = make_task()
    await store.tasks.insert([t])
    now = time.time()
    await store.moves.start([t.id], "w1", now)
    await store.moves.finish([Outcome(t.id, 1, TaskStatus.TIMEOUT, epoch=9)], now)
    assert await store.epochs.max_epoch() == 9


async def test_an_epoch_is_recorded_once(store: SqlStore) -> None:
    await store.epochs.record_epoch(4, "s1", 1.0)
    with pytest.raises(Conflict):
        await store.epochs.record_epoch(4, "s2", 2.0)
