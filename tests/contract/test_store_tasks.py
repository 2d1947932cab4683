"""The store contract for creating and reading tasks, on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from conveyor.errors import Conflict
from conveyor.models import TaskStatus
from conveyor.store.protocol import ListRequest, TaskFilter
from conveyor.store.sql import SqlStore
from tests.contract.store_support import make_task

S = TaskStatus


async def test_insert_get_roundtrip(store: SqlStore) -> None:
    t = make_task(payload={"big": "x" * 100_000, "n": [1, 2.5, None]})
    [created] = await store.tasks.insert([t])
    assert created.created
    got = await store.tasks.get(t.id)
    assert got == t
    [log] = await store.tasks.logs(t.id)
    assert (log.from_status, log.to_status) == (None, S.PENDING)


async def test_migrate_twice_is_harmless(store: SqlStore) -> None:
    await store.migrate()


async def test_idempotency_key_returns_existing(store: SqlStore) -> None:
    first = make_task(idempotency_key="k1")
    [a] = await store.tasks.insert([first])
    [b, c] = await store.tasks.insert(
        [make_task(idempotency_key="k1"), make_task(idempotency_key="k2")]
    )
    assert a.created and not b.created and c.created
    assert b.task.id == first.id
    other_type = await store.tasks.insert([make_task("other", idempotency_key="k1")])
    assert other_type[0].created


async def test_concurrent_idempotent_submits_make_one_task(store: SqlStore) -> None:
    results = await asyncio.gather(
        *(store.tasks.insert([make_task(idempotency_key="same")]) for _ in range(10))
    )
    ids = {r[0].task.id for r in results}
    assert len(ids) == 1
    assert sum(r[0].created for r in results) == 1


async def test_list_filters_and_cursor(store: SqlStore) -> None:
    tasks = [make_task("a" if i % 2 else "b") for i in range(7)]
    for t in tasks:
        await store.tasks.insert([t])
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.tasks.list_tasks(ListRequest(TaskFilter(task_type="a"), cursor, 2))
        seen += [t.id for t in page.tasks]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted((t.id for t in tasks if t.task_type == "a"), reverse=True)
    none = await store.tasks.list_tasks(ListRequest(TaskFilter(status=S.SUCCESS), None, 10))
    assert none.tasks == []
    counts = await store.stats.count_by_status()
    assert counts[("a", "PENDING")] == 3


async def test_a_list_reads_big_columns_only_when_included(store: SqlStore) -> None:
    """Without ``include`` the payload column is not selected: the rows hold placeholders."""
    t = make_task(payload={"big": "x" * 10_000})
    await store.tasks.insert([t])
    bare = await store.tasks.list_tasks(ListRequest(TaskFilter(), None, 10))
    assert bare.tasks[0].id == t.id and bare.tasks[0].payload == {}
    assert bare.include == frozenset()
    full = await store.tasks.list_tasks(ListRequest(TaskFilter(), None, 10, frozenset({"payload"})))
    assert full.tasks[0].payload == t.payload and full.include == {"payload"}


async def test_a_taken_task_id_is_a_conflict(store: SqlStore) -> None:
    t = make_task()
    await store.tasks.insert([t])
    with pytest.raises(Conflict):
        await store.tasks.insert([replace(make_task(), id=t.id)])
    assert await store.tasks.get(t.id) == t
