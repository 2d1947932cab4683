"""The store contract for the durable worker record, on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from conveyor.models import TaskStatus, WorkerInfo, WorkerRecord
from conveyor.store.protocol import Outcome
from conveyor.store.sql import SqlStore
from tests.contract.store_support import make_task


def worker(worker_id: str, capacity: int = 4, types: tuple[str, ...] = ("echo",)) -> WorkerInfo:
    return WorkerInfo(worker_id, "host-a", 1234, capacity, types)


async def processing_on(store: SqlStore, worker_id: str) -> None:
    t = make_task()
    await store.tasks.insert([t])
    assert await store.moves.start([t.id], worker_id, time.time())


async def test_record_workers_inserts_new_and_updates_existing(store: SqlStore) -> None:
    await store.workers.record_workers([worker("w1"), worker("w2")], "alive", 10.0)
    await store.workers.record_workers([worker("w1", capacity=8, types=())], "alive", 20.0)
    records = {r.worker_id: r for r in await store.workers.list_worker_records()}
    assert set(records) == {"w1", "w2"}
    w1, w2 = records["w1"], records["w2"]
    assert (w1.first_seen, w1.last_heartbeat) == (10.0, 20.0)
    assert (w1.capacity, w1.types, w1.state) == (8, (), "alive")
    assert (w2.first_seen, w2.last_heartbeat, w2.types) == (10.0, 10.0, ("echo",))
    assert (w2.host, w2.pid) == ("host-a", 1234)


async def test_worker_records_are_typed_and_ordered_by_id(store: SqlStore) -> None:
    await store.workers.record_workers([worker("w2"), worker("w1", types=("a", "b"))], "alive", 5.0)
    await store.workers.mark_worker("w2", "stopped", 6.0)
    assert await store.workers.list_worker_records() == [
        WorkerRecord("w1", "host-a", 1234, 4, ("a", "b"), "alive", 5.0, 5.0, 5.0),
        WorkerRecord("w2", "host-a", 1234, 4, ("echo",), "stopped", 5.0, 5.0, 6.0),
    ]


async def test_mark_worker_records_when_the_state_changed(store: SqlStore) -> None:
    async def changed_at() -> float | None:
        [record] = await store.workers.list_worker_records()
        return record.state_changed_at

    await store.workers.record_workers([worker("w1")], "alive", 10.0)
    assert await changed_at() == 10.0
    await store.workers.record_workers([worker("w1")], "alive", 20.0)
    assert await changed_at() == 10.0  # a heartbeat is not a change of state
    await store.workers.mark_worker("w1", "dead", 30.0)
    assert await changed_at() == 30.0
    await store.workers.mark_worker("w1", "dead", 40.0)
    assert await changed_at() == 30.0
    await store.workers.record_workers([worker("w1")], "alive", 50.0)  # it came back
    [record] = await store.workers.list_worker_records()
    assert (record.state, record.state_changed_at, record.last_heartbeat) == ("alive", 50.0, 50.0)


@contextmanager
def statements(store: SqlStore) -> Iterator[list[str]]:
    """The SQL the store sends while the block runs (SQLAlchemy's own engine events)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(" ".join(statement.split()[:2]).upper())

    engine = store.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


async def test_record_workers_is_one_update_then_at_most_one_insert(store: SqlStore) -> None:
    with statements(store) as first:
        await store.workers.record_workers([worker("w1")], "alive", 10.0)
    assert [s for s in first if s.startswith(("UPDATE", "INSERT"))] == [
        "UPDATE WORKER_REGISTRY", "INSERT INTO",
    ]
    with statements(store) as again:
        await store.workers.record_workers([worker("w1")], "alive", 20.0)
    assert [s for s in again if s.startswith(("UPDATE", "INSERT"))] == ["UPDATE WORKER_REGISTRY"]


async def test_stale_processing_workers_names_only_workers_that_look_dead(
    store: SqlStore,
) -> None:
    now = 1_000.0
    await store.workers.record_workers([worker("fresh"), worker("stopped")], "alive", now)
    await store.workers.record_workers([worker("silent")], "alive", now - 60)
    await store.workers.record_workers([worker("reaped")], "alive", now)
    await store.workers.mark_worker("stopped", "stopped", now)
    await store.workers.mark_worker("reaped", "dead", now)
    await store.workers.record_workers([worker("idle")], "alive", now - 60)  # holds nothing
    for worker_id in ("fresh", "silent", "stopped", "reaped", "never-recorded"):
        await processing_on(store, worker_id)
    stale = await store.workers.stale_processing_workers(cutoff=now - 30)
    assert sorted(stale) == ["never-recorded", "reaped", "silent", "stopped"]


async def test_a_worker_holding_nothing_is_not_stale(store: SqlStore) -> None:
    await processing_on(store, "gone")
    assert await store.workers.stale_processing_workers(cutoff=0.0) == ["gone"]
    [running] = await store.sweeps.processing_on("gone")
    done = Outcome(running.id, running.attempt, TaskStatus.SUCCESS)
    assert await store.moves.finish([done], time.time())
    assert await store.workers.stale_processing_workers(cutoff=0.0) == []
