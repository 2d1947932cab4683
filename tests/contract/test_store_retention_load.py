"""Retention at size, on MariaDB and PostgreSQL: 200,000 expired rows (100,000 tasks and their
logs) purged while one client keeps creating tasks and a worker keeps starting and finishing
them. Both must progress during the purge; how fast each goes is ``bench/retention.py``'s to
report, not an assertion here (this machine is shared)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from conveyor.config import RetentionSettings
from conveyor.models import TaskStatus
from conveyor.store.schema import task, task_logs
from conveyor.store.sql import SqlStore
from tests.support.databases import fresh_database
from tests.support.finished import ended
from tests.support.purge_load import HotPath, fill, leading_purger, purge_everything

TASKS = 100_000
POLICY = RetentionSettings()


@pytest.fixture(params=["mariadb", "postgres"])
async def big_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with fresh_database(request.param, tmp_path) as url:
        store = SqlStore(url)
        await store.migrate()
        try:
            yield store
        finally:
            await store.close()


async def count(store: SqlStore, table: sa.Table) -> int:
    rows = await store.db.rows(sa.select(sa.func.count().label("n")).select_from(table))
    return int(rows[0]["n"])


async def test_the_hot_path_keeps_moving_while_200k_rows_are_purged(big_store: SqlStore) -> None:
    now = time.time()
    await fill(big_store, TASKS, now, POLICY.succeeded)
    kept = await ended(big_store, TaskStatus.FAILED, now - 8 * 86_400)  # failed: kept 30 days
    assert await count(big_store, task) + await count(big_store, task_logs) >= 2 * TASKS

    hot, stop = HotPath(big_store), asyncio.Event()
    load = [asyncio.create_task(hot.creates(stop)), asyncio.create_task(hot.runs(stop))]
    await asyncio.sleep(0.5)  # the hot path is under way before the purge begins
    began = time.monotonic()
    duty = await leading_purger(big_store, POLICY)
    removed = await purge_everything(duty)
    ended_at = time.monotonic()
    stop.set()
    await asyncio.gather(*load)

    assert removed == 2 * TASKS and duty.removed == {"task": TASKS, "task_logs": TASKS}
    assert HotPath.between(hot.created, began, ended_at) > 0
    assert HotPath.between(hot.finished, began, ended_at) > 0
    # What remains: the kept failed task and everything the hot path wrote, nothing else.
    assert await count(big_store, task) == len(hot.created) + len(kept)
    assert len(await big_store.tasks.logs(kept[0].id)) == 3
