"""Dependencies in the store (docs/design.md §10), on SQLite, MariaDB and PostgreSQL: a
parent's final move settles its children in its own transaction; the release sweep's page
settles what that could not."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from conveyor.models import Input, Task, TaskStatus
from conveyor.store.protocol import Finished, Outcome
from conveyor.store.schema import task_logs
from conveyor.store.sql import SqlStore
from tests.contract.store_support import make_task

S = TaskStatus


def child(*parents: Task, **changes: Any) -> Task:
    return make_task(status=S.WAITING, parents=tuple(p.id for p in parents), **changes)


async def end(
    store: SqlStore, tasks: Sequence[Task], status: S = S.SUCCESS, result: Any = None,
    now: float | None = None,
) -> Finished:
    now = now or time.time()
    await store.moves.start([t.id for t in tasks], "w1", now)
    outcomes = [Outcome(t.id, 1, status, result=result if result is not None else {"id": t.id})
                for t in tasks]
    return await store.moves.finish(outcomes, now)


async def statuses(store: SqlStore, tasks: Sequence[Task]) -> list[S]:
    by_id = {t.id: t.status for t in await store.tasks.get_many([t.id for t in tasks])}
    return [by_id[t.id] for t in tasks]


async def test_a_diamond_releases_its_join_once_both_parents_succeeded(store: SqlStore) -> None:
    a = make_task()
    b, c = child(a), child(a)
    d = child(b, c)
    await store.tasks.insert([a, b, c, d])
    assert await statuses(store, [a, b, c, d]) == [S.PENDING, S.WAITING, S.WAITING, S.WAITING]
    done = await end(store, [a])
    assert {t.id for t in done.released} == {b.id, c.id}
    assert all(t.status == S.PENDING for t in done.released)
    assert (await end(store, [b])).released == []
    assert await statuses(store, [d]) == [S.WAITING]
    assert [t.id for t in (await end(store, [c])).released] == [d.id]
    logs = await store.tasks.logs(d.id)
    assert [(x.from_status, x.to_status) for x in logs] == [
        (None, S.WAITING), (S.WAITING, S.PENDING)
    ]


async def test_a_chain_of_100_runs_in_order(store: SqlStore) -> None:
    chain = [make_task()]
    for _ in range(99):
        chain.append(child(chain[-1]))
    await store.tasks.insert(chain)
    for i, t in enumerate(chain):
        rest = [S.WAITING] if i < 99 else []
        assert await statuses(store, chain[i:i + 2]) == [S.PENDING, *rest]
        done = await end(store, [t])
        assert [r.id for r in done.released] == ([chain[i + 1].id] if i < 99 else [])


async def test_a_failed_parent_cancels_its_descendants_naming_it(store: SqlStore) -> None:
    a = make_task()
    b = child(a)
    c = child(b)
    runner = child(a, on_parent_failure="run")
    await store.tasks.insert([a, b, c, runner])
    done = await end(store, [a], S.FAILED)
    assert [t.id for t in done.released] == [runner.id]
    got = {t.id: t for t in await store.tasks.get_many([b.id, c.id])}
    assert got[b.id].status == S.CANCELLED and a.id in (got[b.id].error or "")
    assert got[c.id].status == S.CANCELLED and b.id in (got[c.id].error or "")


async def test_a_cancelled_waiting_task_cancels_its_children(store: SqlStore) -> None:
    a = make_task()
    b = child(a)
    c = child(b)
    await store.tasks.insert([a, b, c])
    assert await store.moves.cancel_pending(b.id, time.time(), "by request")
    assert await statuses(store, [a, b, c]) == [S.PENDING, S.CANCELLED, S.CANCELLED]


async def test_inputs_and_a_fan_in_of_1000(store: SqlStore) -> None:
    parents = [make_task() for _ in range(1000)]
    join = child(*parents, inputs=(Input("all", None, "n"),))
    one = child(parents[7], inputs=(Input("seven", parents[7].id, "n"),))
    await store.tasks.insert([*parents, join, one])
    now = time.time()
    await store.moves.start([p.id for p in parents], "w1", now)
    outcomes = [Outcome(p.id, 1, S.SUCCESS, result={"n": i}) for i, p in enumerate(parents)]
    done = await store.moves.finish(outcomes, now)
    assert {t.id for t in done.released} == {join.id, one.id}
    got = {t.id: t for t in await store.tasks.get_many([join.id, one.id])}
    assert got[join.id].payload == {"x": 1, "all": list(range(1000))}
    assert got[one.id].payload == {"x": 1, "seven": 7}
    async with store.db.connect() as conn:
        count = await conn.scalar(sa.select(sa.func.count()).select_from(task_logs).where(
            task_logs.c.task_id == join.id))
    assert count == 2


async def test_a_missing_input_path_cancels_with_the_reason(store: SqlStore) -> None:
    a = make_task()
    b = child(a, inputs=(Input("v", a.id, "nope"),))
    await store.tasks.insert([a, b])
    await end(store, [a])
    [got] = await store.tasks.get_many([b.id])
    assert got.status == S.CANCELLED and "nope" in (got.error or "")


async def test_a_child_of_ended_parents_is_settled_on_insert(store: SqlStore) -> None:
    a, f = make_task(), make_task()
    await store.tasks.insert([a, f])
    await end(store, [a])
    await end(store, [f], S.FAILED)
    ok, gone = child(a), child(f)
    created = await store.tasks.insert([ok, gone])
    assert [c.task.status for c in created] == [S.PENDING, S.CANCELLED]


async def test_the_release_sweep_settles_what_a_finish_missed(store: SqlStore) -> None:
    a = make_task()
    await store.tasks.insert([a])
    b = child(a)
    await store.tasks.insert([b])
    # A's final move as if it had committed before B's edge existed: no settle ran for B.
    await store.moves.start([a.id], "w1", time.time())
    async with store.db.begin() as conn:
        await conn.execute(sa.text("UPDATE task SET status = 'SUCCESS' WHERE id = :i"),
                           {"i": a.id})
    later = time.time() + 60
    cursor, settled = await store.deps.release_waiting(None, later, 100, later)
    assert cursor == b.id and [t.id for t in settled.released] == [b.id]
    _, again = await store.deps.release_waiting(None, later, 100, later)
    assert again.released == [] and await statuses(store, [b]) == [S.PENDING]


async def test_a_manual_retry_of_a_cancelled_child_waits_for_its_parents(
    store: SqlStore,
) -> None:
    a = make_task()
    b = child(a)
    await store.tasks.insert([a, b])
    await end(store, [a], S.FAILED)
    # Its parent still failed for good: cancelled again at once, naming it.
    again = await store.moves.reopen(b.id, time.time(), "manual retry")
    assert again is not None and again.status == S.CANCELLED and a.id in (again.error or "")
    assert await store.moves.reopen(a.id, time.time(), "manual retry")
    reopened = await store.moves.reopen(b.id, time.time(), "manual retry")
    assert reopened is not None and reopened.status == S.WAITING
    await store.moves.start([a.id], "w1", time.time())
    done = await store.moves.finish([Outcome(a.id, 2, S.SUCCESS)], time.time())
    assert [t.id for t in done.released] == [b.id]
    ok = make_task()
    c = child(ok)
    await store.tasks.insert([ok, c])
    assert await store.moves.cancel_pending(c.id, time.time(), "by request")
    await end(store, [ok])
    ran = await store.moves.reopen(c.id, time.time(), "manual retry")
    assert ran is not None and ran.status == S.PENDING  # its parent had succeeded
