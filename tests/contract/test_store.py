"""The store contract, run against SQLite, MariaDB and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from conveyor.events import Event, EventBus, EventKind
from conveyor.ids import new_id
from conveyor.models import Backoff, Priority, Task, TaskConfig, TaskStatus
from conveyor.store.protocol import Outcome, TaskFilter
from conveyor.store.sql import SqlStore
from databases import BACKENDS, fresh_database

S = TaskStatus


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def notify(self, event: Event) -> None:
        self.events.append(event)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with fresh_database(request.param, tmp_path) as url:
        s = SqlStore(url, EventBus([Recorder()]))
        await s.migrate()
        try:
            yield s
        finally:
            await s.close()


def make_task(task_type: str = "echo", **changes: object) -> Task:
    now = time.time()
    t = Task(
        id=new_id(now), task_type=task_type, priority=Priority.NORMAL, payload={"x": 1},
        status=S.PENDING, max_retries=2, timeout=30.0, created_at=now, run_at=now,
        metadata={"k": "v"},
    )
    return replace(t, **changes)  # type: ignore[arg-type]


async def test_insert_get_roundtrip(store: SqlStore) -> None:
    t = make_task(payload={"big": "x" * 100_000, "n": [1, 2.5, None]})
    [created] = await store.insert([t])
    assert created.created
    got = await store.get(t.id)
    assert got == t
    [log] = await store.logs(t.id)
    assert (log.from_status, log.to_status) == (None, S.PENDING)


async def test_migrate_twice_is_harmless(store: SqlStore) -> None:
    await store.migrate()


async def test_idempotency_key_returns_existing(store: SqlStore) -> None:
    first = make_task(idempotency_key="k1")
    [a] = await store.insert([first])
    [b, c] = await store.insert([make_task(idempotency_key="k1"), make_task(idempotency_key="k2")])
    assert a.created and not b.created and c.created
    assert b.task.id == first.id
    other_type = await store.insert([make_task("other", idempotency_key="k1")])
    assert other_type[0].created


async def test_concurrent_idempotent_submits_make_one_task(store: SqlStore) -> None:
    results = await asyncio.gather(
        *(store.insert([make_task(idempotency_key="same")]) for _ in range(10))
    )
    ids = {r[0].task.id for r in results}
    assert len(ids) == 1
    assert sum(r[0].created for r in results) == 1


async def test_start_and_finish_with_cas(store: SqlStore) -> None:
    tasks = [make_task() for _ in range(5)]
    await store.insert(tasks)
    now = time.time()
    started = await store.start([t.id for t in tasks], "w1", now)
    assert {t.id for t in started} == {t.id for t in tasks}
    assert all(t.status == S.PROCESSING and t.attempt == 1 for t in started)
    assert await store.start([tasks[0].id], "w2", now + 1) == []
    done = await store.finish([Outcome(tasks[0].id, 1, S.SUCCESS, result={"ok": True})], now + 2)
    assert done[0].status == S.SUCCESS and done[0].result == {"ok": True}
    # A second answer for the same attempt, or one from an old attempt, is refused.
    assert await store.finish([Outcome(tasks[0].id, 1, S.FAILED, error="late")], now + 3) == []
    assert await store.finish([Outcome(tasks[1].id, 0, S.SUCCESS)], now + 3) == []
    logs = await store.logs(tasks[0].id)
    assert [(x.from_status, x.to_status) for x in logs] == [
        (None, S.PENDING), (S.PENDING, S.PROCESSING), (S.PROCESSING, S.SUCCESS)
    ]


async def test_failure_with_retry_goes_back_to_pending(store: SqlStore) -> None:
    t = make_task()
    await store.insert([t])
    now = time.time()
    await store.start([t.id], "w1", now)
    [moved] = await store.finish(
        [Outcome(t.id, 1, S.FAILED, error="boom", retry_at=now + 5)], now
    )
    assert moved.status == S.PENDING and moved.retry_count == 1 and moved.run_at == now + 5
    logs = await store.logs(t.id)
    assert [x.to_status for x in logs] == [S.PENDING, S.PROCESSING, S.FAILED, S.PENDING]
    await store.start([t.id], "w1", now + 6)
    [lost] = await store.finish(
        [Outcome(t.id, 2, S.TIMEOUT, error="worker lost", retry_at=now + 7, spend_retry=False)],
        now + 6,
    )
    assert lost.retry_count == 1 and lost.attempt == 2


async def test_cancel_reopen_and_priority(store: SqlStore) -> None:
    t = make_task()
    await store.insert([t])
    now = time.time()
    changed = await store.set_priority(t.id, Priority.HIGH, now)
    assert changed is not None and changed.priority == Priority.HIGH
    cancelled = await store.cancel_pending(t.id, now, "by user")
    assert cancelled is not None and cancelled.status == S.CANCELLED
    assert await store.cancel_pending(t.id, now, "again") is None
    assert await store.set_priority(t.id, Priority.LOW, now) is None
    reopened = await store.reopen(t.id, now, "manual retry")
    assert reopened is not None and reopened.status == S.PENDING
    assert await store.reopen(t.id, now, "not final") is None


async def test_events_follow_commits(store: SqlStore) -> None:
    recorder = store.events._listeners[0]
    assert isinstance(recorder, Recorder)
    t = make_task()
    await store.insert([t])
    now = time.time()
    await store.start([t.id], "w", now)
    await store.finish([Outcome(t.id, 1, S.FAILED, error="x", retry_at=now)], now)
    await store.start([t.id], "w", now + 1)
    await store.finish([Outcome(t.id, 2, S.FAILED, error="x")], now + 1)
    kinds = [e.kind for e in recorder.events]
    assert kinds == [EventKind.CREATED, EventKind.STARTED, EventKind.RETRYING,
                     EventKind.STARTED, EventKind.FAILED]


async def test_list_filters_and_cursor(store: SqlStore) -> None:
    tasks = [make_task("a" if i % 2 else "b") for i in range(7)]
    for t in tasks:
        await store.insert([t])
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_tasks(TaskFilter(task_type="a"), cursor, 2)
        seen += [t.id for t in page.tasks]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted((t.id for t in tasks if t.task_type == "a"), reverse=True)
    none = await store.list_tasks(TaskFilter(status=S.SUCCESS), None, 10)
    assert none.tasks == []
    counts = await store.count_by_status()
    assert counts[("a", "PENDING")] == 3


async def test_overdue_processing_and_pending_page(store: SqlStore) -> None:
    t = make_task(timeout=1.0)
    u = make_task()
    await store.insert([t, u])
    now = time.time()
    await store.start([t.id], "w9", now)
    assert [x.id for x in await store.overdue(now + 10, 1.0, 10)] == [t.id]
    assert await store.overdue(now + 1.5, 1.0, 10) == []
    assert [x.id for x in await store.processing_on("w9")] == [t.id]
    pending = await store.pending_page(None, now + 100, 10)
    assert [x.id for x in pending] == [u.id]


async def test_task_config_crud(store: SqlStore) -> None:
    cfg = TaskConfig(
        "http_call", executor="http", executor_config={"url": "http://x"}, timeout=5,
        max_retries=1, priority=Priority.HIGH, backoff=Backoff(1, 2, 10, 0.1), updated_at=1.0,
    )
    await store.put_config(cfg)
    assert await store.get_config("http_call") == cfg
    await store.put_config(replace(cfg, timeout=9.0))
    assert [c.timeout for c in await store.list_configs()] == [9.0]
    assert await store.delete_config("http_call")
    assert not await store.delete_config("http_call")
    assert await store.get_config("http_call") is None


async def test_finish_a_mixed_batch_in_one_statement(store: SqlStore) -> None:
    tasks = [make_task() for _ in range(6)]
    await store.insert(tasks)
    now = time.time()
    await store.start([t.id for t in tasks], "w1", now)
    # Another process moves task 5 meanwhile: its outcome must not apply.
    assert await store.finish([Outcome(tasks[5].id, 1, S.CANCELLED)], now)
    outcomes = [
        Outcome(tasks[0].id, 1, S.SUCCESS, result={"n": [1, "two", None]}),
        Outcome(tasks[1].id, 1, S.FAILED, error="boom", retry_at=now + 9),
        Outcome(tasks[2].id, 1, S.TIMEOUT, error="slow"),
        Outcome(tasks[3].id, 1, S.CANCELLED, error="asked"),
        Outcome(tasks[4].id, 7, S.SUCCESS, result=1),  # a superseded attempt
        Outcome(tasks[5].id, 1, S.SUCCESS, result=2),
    ]
    moved = await store.finish(outcomes, now + 1)
    assert [t.id for t in moved] == [t.id for t in tasks[:4]]
    got = {t.id: t for t in await store.get_many([t.id for t in tasks])}
    assert got[tasks[0].id].result == {"n": [1, "two", None]}
    assert got[tasks[0].id].finished_at == now + 1
    retried = got[tasks[1].id]
    assert (retried.status, retried.run_at, retried.finished_at) == (S.PENDING, now + 9, None)
    assert retried.retry_count == 1 and retried.error == "boom"
    assert got[tasks[2].id].status == S.TIMEOUT and got[tasks[3].id].status == S.CANCELLED
    assert got[tasks[4].id].status == S.PROCESSING
    assert got[tasks[5].id].status == S.CANCELLED and got[tasks[5].id].result is None
    assert all(got[t.id].version == t.version + 2 for t in tasks[:4])
