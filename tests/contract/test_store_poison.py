"""One bad row never blocks a batch, and keys compare byte for byte, on SQLite, MariaDB and
PostgreSQL (issue 10, findings 2 and 3).

A coalesced create, a worker's start and a worker's finish each write many callers' rows in one
transaction; these tests put one row in the batch that the database (or the encoder) refuses and
check that every other member lands and the bad one alone fails or is set aside.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
import sqlalchemy as sa

from conveyor.coalescer import Coalescer
from conveyor.models import Task, TaskStatus
from conveyor.store.migrate import upgrade
from conveyor.store.protocol import Created, Outcome
from conveyor.store.schema import task
from conveyor.store.sql import SqlStore
from conveyor.values import MAX_ERROR_CHARS
from tests.contract.store_support import make_task

S = TaskStatus


async def test_a_refused_row_in_a_coalesced_create_fails_alone(store: SqlStore) -> None:
    """A lone surrogate cannot be encoded by any driver: before, the whole batch failed."""
    coalescer: Coalescer[Task, Created] = Coalescer(store.tasks.insert)
    good = [make_task(payload={"i": i}) for i in range(39)]
    poison = make_task(idempotency_key="bad\ud800key")
    calls = [coalescer.submit([t]) for t in good[:20]]
    calls += [coalescer.submit([poison])]
    calls += [coalescer.submit([t]) for t in good[20:]]
    answers = await asyncio.gather(*calls, return_exceptions=True)
    failed = [a for a in answers if isinstance(a, BaseException)]
    assert len(failed) == 1, failed
    assert answers[20] is failed[0]
    assert await store.tasks.get(poison.id) is None
    stored = await store.tasks.get_many([t.id for t in good])
    assert {t.id for t in stored} == {t.id for t in good}


async def test_one_batch_request_is_all_or_nothing(store: SqlStore) -> None:
    batch = [make_task(), make_task(idempotency_key="x\ud800"), make_task()]
    with pytest.raises(Exception):  # noqa: B017 - the driver's own encoding error
        await store.tasks.insert(batch)
    assert await store.tasks.get_many([t.id for t in batch]) == []


async def test_idempotency_keys_compare_byte_for_byte(store: SqlStore) -> None:
    """MariaDB's default collation made these one key (and the second create a 503)."""
    keys = ["Order-1", "order-1", "order-1 ", "ordér-1", "orde\u0301r-1"]
    for key in keys:
        [created] = await store.tasks.insert([make_task(idempotency_key=key)])
        assert created.created, key
    again = await store.tasks.insert([make_task(idempotency_key=k) for k in keys])
    assert [c.created for c in again] == [False] * len(keys)
    assert [c.task.idempotency_key for c in again] == keys


async def test_one_key_under_types_differing_by_case_is_two_tasks(store: SqlStore) -> None:
    """Types are case-sensitive names; MariaDB's collation would call ``Mail`` and ``mail`` one
    type in the key's constraint unless the type is part of the hash."""
    created = [await store.tasks.insert([make_task(task_type=k, idempotency_key="same")])
               for k in ("mail", "Mail")]
    assert [c.created for [c] in created] == [True, True]


async def test_a_key_twice_in_one_batch_keeps_the_first(store: SqlStore) -> None:
    first, second = make_task(payload={"n": 1}, idempotency_key="k"), make_task(
        payload={"n": 2}, idempotency_key="k")
    created = await store.tasks.insert([first, second])
    assert [c.created for c in created] == [True, False]
    assert created[1].task.id == first.id
    stored = await store.tasks.get(first.id)
    assert stored is not None and stored.payload == {"n": 1}
    assert await store.tasks.get(second.id) is None


async def _started(store: SqlStore, n: int) -> list[Task]:
    tasks = [make_task() for _ in range(n)]
    await store.tasks.insert(tasks)
    return await store.moves.start([t.id for t in tasks], "w1", time.time())


async def test_finish_stores_every_member_of_a_hostile_batch(store: SqlStore) -> None:
    """NUL in an error (PostgreSQL refuses it), a result over the limit (MariaDB's packet),
    results orjson cannot write: before, each failed the finisher's whole batch forever."""
    tasks = await _started(store, 7)
    now = time.time()
    big = "x" * (1_048_576 + 10)
    outcomes = [
        Outcome(tasks[0].id, 1, S.FAILED, error="bad\x00byte"),
        Outcome(tasks[1].id, 1, S.SUCCESS, result={"blob": big}),
        Outcome(tasks[2].id, 1, S.SUCCESS, result={"n": float("nan")}),
        Outcome(tasks[3].id, 1, S.SUCCESS, result={"n": 2**70}),
        Outcome(tasks[4].id, 1, S.FAILED, error="e" * 100_000),
        Outcome(tasks[5].id, 1, S.FAILED, error="lone \ud800 surrogate"),
        Outcome(tasks[6].id, 1, S.SUCCESS, result={"ok": True}),
    ]
    done = {t.id: t for t in await store.moves.finish(outcomes, now)}
    assert set(done) == {t.id for t in tasks}
    read = {t.id: t for t in await store.tasks.get_many(list(done))}
    assert read[tasks[0].id].error == "badbyte"
    oversized = read[tasks[1].id]
    assert oversized.status == S.FAILED and oversized.result is None
    assert oversized.error is not None and "max_result_bytes" in oversized.error
    for t in tasks[2:4]:
        assert read[t.id].status == S.FAILED and "result" in (read[t.id].error or "")
    cut = read[tasks[4].id].error or ""
    assert len(cut) == MAX_ERROR_CHARS and cut.endswith("[cut: 100000 characters in all]")
    assert read[tasks[5].id].error == "lone \ufffd surrogate"
    assert read[tasks[6].id].status == S.SUCCESS and read[tasks[6].id].result == {"ok": True}


async def test_an_outcome_the_store_refuses_fails_its_task_alone(store: SqlStore) -> None:
    """Whatever makes one member's write fail (here a move the state machine forbids), the
    batch is split: the others land, and the refused one is recorded FAILED with the reason."""
    tasks = await _started(store, 3)
    outcomes = [Outcome(tasks[0].id, 1, S.SUCCESS, result=1),
                Outcome(tasks[1].id, 1, S.PENDING),
                Outcome(tasks[2].id, 1, S.SUCCESS, result=3)]
    done = {t.id: t for t in await store.moves.finish(outcomes, time.time())}
    assert done[tasks[0].id].status == S.SUCCESS and done[tasks[2].id].status == S.SUCCESS
    refused = done[tasks[1].id]
    assert refused.status == S.FAILED and "refused" in (refused.error or "")


async def test_results_near_the_limit_fit_one_statement(store: SqlStore) -> None:
    """Twenty results of almost 1 MiB each: one statement would be 20 MiB, over MariaDB's
    16 MiB packet; the batch is cut by bytes."""
    tasks = await _started(store, 20)
    blob = "y" * 1_000_000
    outcomes = [Outcome(t.id, 1, S.SUCCESS, result=blob) for t in tasks]
    done = await store.moves.finish(outcomes, time.time())
    assert {t.status for t in done} == {S.SUCCESS} and len(done) == 20
    read = await store.tasks.get_many([t.id for t in tasks])
    assert all(t.result == blob for t in read)


async def test_a_refused_id_in_a_start_batch_is_left_out(store: SqlStore) -> None:
    tasks = [make_task() for _ in range(4)]
    await store.tasks.insert(tasks)
    ids = [tasks[0].id, tasks[1].id, "nul\x00id\ud800", tasks[2].id, tasks[3].id]
    started = await store.moves.start(ids, "w1", time.time())
    assert {t.id for t in started} == {t.id for t in tasks}


async def test_migration_0007_hashes_existing_keys(store: SqlStore) -> None:
    """Rows written before the hash column still match their key afterwards."""
    engine = store.db.engine
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: _downgrade(sync))
    t = make_task(idempotency_key="legacy")
    later = ("idempotency_hash", "tenant", "wait_deadline", "pinned_worker")  # after 0006
    row = {k: v for k, v in _row(t).items() if k not in later}
    async with engine.begin() as conn:
        await conn.execute(sa.table("task", *(sa.column(k) for k in row)).insert(), [row])
    await upgrade(engine)
    [again] = await store.tasks.insert([make_task(idempotency_key="legacy")])
    assert not again.created and again.task.id == t.id


def _downgrade(sync: sa.Connection) -> None:
    from alembic import command

    from conveyor.store.migrate import _config

    command.downgrade(_config(sync), "0006")


def _row(t: Task) -> dict[str, object]:
    from conveyor.store.rows import task_to_row

    return task_to_row(replace(t), time.time())


def test_the_table_declares_the_hash_constraint() -> None:
    names = {c.name for c in task.constraints}
    assert "uq_task_tenant_idempotency" in names and "uq_task_idempotency" not in names
