"""The store contract for state moves (start, finish, cancel, reopen, priority), on SQLite,
MariaDB and PostgreSQL."""

from __future__ import annotations

import time

from conveyor.events import EventKind
from conveyor.models import Priority, TaskStatus
from conveyor.store.protocol import Outcome
from conveyor.store.sql import SqlStore
from tests.contract.store_support import Recorder, make_task

S = TaskStatus


async def test_start_and_finish_with_cas(store: SqlStore) -> None:
    tasks = [make_task() for _ in range(5)]
    await store.tasks.insert(tasks)
    now = time.time()
    started = await store.moves.start([t.id for t in tasks], "w1", now)
    assert {t.id for t in started} == {t.id for t in tasks}
    assert all(t.status == S.PROCESSING and t.attempt == 1 for t in started)
    assert await store.moves.start([tasks[0].id], "w2", now + 1) == []
    done = await store.moves.finish(
        [Outcome(tasks[0].id, 1, S.SUCCESS, result={"ok": True})], now + 2
    )
    assert done[0].status == S.SUCCESS and done[0].result == {"ok": True}
    # A second answer for the same attempt, or one from an old attempt, is refused.
    late = [Outcome(tasks[0].id, 1, S.FAILED, error="late")]
    assert await store.moves.finish(late, now + 3) == []
    assert await store.moves.finish([Outcome(tasks[1].id, 0, S.SUCCESS)], now + 3) == []
    logs = await store.tasks.logs(tasks[0].id)
    assert [(x.from_status, x.to_status) for x in logs] == [
        (None, S.PENDING), (S.PENDING, S.PROCESSING), (S.PROCESSING, S.SUCCESS)
    ]


async def test_failure_with_retry_goes_back_to_pending(store: SqlStore) -> None:
    t = make_task()
    await store.tasks.insert([t])
    now = time.time()
    await store.moves.start([t.id], "w1", now)
    [moved] = await store.moves.finish(
        [Outcome(t.id, 1, S.FAILED, error="boom", retry_at=now + 5)], now
    )
    assert moved.status == S.PENDING and moved.retry_count == 1 and moved.run_at == now + 5
    logs = await store.tasks.logs(t.id)
    assert [x.to_status for x in logs] == [S.PENDING, S.PROCESSING, S.FAILED, S.PENDING]
    await store.moves.start([t.id], "w1", now + 6)
    [lost] = await store.moves.finish(
        [Outcome(t.id, 2, S.TIMEOUT, error="worker lost", retry_at=now + 7, spend_retry=False)],
        now + 6,
    )
    assert lost.retry_count == 1 and lost.attempt == 2


async def test_cancel_reopen_and_priority(store: SqlStore) -> None:
    t = make_task()
    await store.tasks.insert([t])
    now = time.time()
    changed = await store.moves.set_priority(t.id, Priority.HIGH, now)
    assert changed is not None and changed.priority == Priority.HIGH
    cancelled = await store.moves.cancel_pending(t.id, now, "by user")
    assert cancelled is not None and cancelled.status == S.CANCELLED
    assert await store.moves.cancel_pending(t.id, now, "again") is None
    assert await store.moves.set_priority(t.id, Priority.LOW, now) is None
    reopened = await store.moves.reopen(t.id, now, "manual retry")
    assert reopened is not None and reopened.status == S.PENDING
    assert await store.moves.reopen(t.id, now, "not final") is None


async def test_events_follow_commits(store: SqlStore) -> None:
    recorder = store.events._listeners[0]
    assert isinstance(recorder, Recorder)
    t = make_task()
    await store.tasks.insert([t])
    now = time.time()
    await store.moves.start([t.id], "w", now)
    await store.moves.finish([Outcome(t.id, 1, S.FAILED, error="x", retry_at=now)], now)
    await store.moves.start([t.id], "w", now + 1)
    await store.moves.finish([Outcome(t.id, 2, S.FAILED, error="x")], now + 1)
    kinds = [e.kind for e in recorder.events]
    assert kinds == [EventKind.CREATED, EventKind.STARTED, EventKind.RETRYING,
                     EventKind.STARTED, EventKind.FAILED]


async def test_finish_a_mixed_batch_in_one_statement(store: SqlStore) -> None:
    tasks = [make_task() for _ in range(6)]
    await store.tasks.insert(tasks)
    now = time.time()
    await store.moves.start([t.id for t in tasks], "w1", now)
    # Another process moves task 5 meanwhile: its outcome must not apply.
    assert await store.moves.finish([Outcome(tasks[5].id, 1, S.CANCELLED)], now)
    outcomes = [
        Outcome(tasks[0].id, 1, S.SUCCESS, result={"n": [1, "two", None]}),
        Outcome(tasks[1].id, 1, S.FAILED, error="boom", retry_at=now + 9),
        Outcome(tasks[2].id, 1, S.TIMEOUT, error="slow"),
        Outcome(tasks[3].id, 1, S.CANCELLED, error="asked"),
        Outcome(tasks[4].id, 7, S.SUCCESS, result=1),  # a superseded attempt
        Outcome(tasks[5].id, 1, S.SUCCESS, result=2),
    ]
    moved = await store.moves.finish(outcomes, now + 1)
    assert [t.id for t in moved] == [t.id for t in tasks[:4]]
    got = {t.id: t for t in await store.tasks.get_many([t.id for t in tasks])}
    assert got[tasks[0].id].result == {"n": [1, "two", None]}
    assert got[tasks[0].id].finished_at == now + 1
    retried = got[tasks[1].id]
    assert (retried.status, retried.run_at, retried.finished_at) == (S.PENDING, now + 9, None)
    assert retried.retry_count == 1 and retried.error == "boom"
    assert got[tasks[2].id].status == S.TIMEOUT and got[tasks[3].id].status == S.CANCELLED
    assert got[tasks[4].id].status == S.PROCESSING
    assert got[tasks[5].id].status == S.CANCELLED and got[tasks[5].id].result is None
    assert all(got[t.id].version == t.version + 2 for t in tasks[:4])


async def test_finish_from_the_reporters_copy_is_fenced_on_its_version(store: SqlStore) -> None:
    """A worker's outcome carries the task as its start returned it and is written without a
    read: whatever moved the row since (a timeout written by the scheduler, a cancel, a rerun
    started elsewhere) bumped the version, so the stale copy changes nothing."""
    tasks = [make_task() for _ in range(4)]
    await store.tasks.insert(tasks)
    now = time.time()
    held = {t.id: t for t in await store.moves.start([t.id for t in tasks], "w1", now)}
    timed_out, cancelled, rerun, kept = (held[t.id] for t in tasks)
    await store.moves.finish([Outcome(timed_out.id, 1, S.TIMEOUT, error="deadline")], now + 1)
    await store.moves.finish([Outcome(cancelled.id, 1, S.CANCELLED, task=cancelled)], now + 1)
    await store.moves.finish(
        [Outcome(rerun.id, 1, S.TIMEOUT, error="lost", retry_at=now, spend_retry=False)], now + 1
    )
    [again] = await store.moves.start([rerun.id], "w2", now + 2)
    late = [Outcome(t.id, 1, S.SUCCESS, result="late", worker_id="w1", task=t)
            for t in (timed_out, cancelled, rerun, kept)]
    moved = await store.moves.finish(late, now + 3)
    assert [t.id for t in moved] == [kept.id]
    assert moved[0].status == S.SUCCESS and moved[0].version == kept.version + 1
    got = {t.id: t for t in await store.tasks.get_many([t.id for t in tasks])}
    assert got[timed_out.id].status == S.TIMEOUT and got[cancelled.id].status == S.CANCELLED
    assert got[rerun.id].status == S.PROCESSING and got[rerun.id].worker_id == "w2"
    assert got[kept.id].result == "late" and got[kept.id].finished_at == now + 3
    [done] = await store.moves.finish([Outcome(again.id, 2, S.SUCCESS, task=again)], now + 4)
    assert done.status == S.SUCCESS and done.attempt == 2
    logs = await store.tasks.logs(rerun.id)
    assert [x.to_status for x in logs][-2:] == [S.PROCESSING, S.SUCCESS]
