"""Wait deadlines in the store (``wait_timeout_seconds``, docs/design.md §10), on SQLite,
MariaDB and PostgreSQL: a page cancels the WAITING tasks past their deadline, in batches, its
logs fenced by the epoch, its cancels settling their own children; a task released first, or
not yet due, is left alone; a reopened task waits as long again."""

from __future__ import annotations

import time

from conveyor.models import TaskStatus
from conveyor.store.sql import SqlStore
from conveyor.store.waits import REASON
from tests.contract.store_support import make_task
from tests.contract.test_store_deps import child, end, statuses

S = TaskStatus


async def test_tasks_past_their_deadline_are_cancelled_in_batches_with_the_epoch(
    store: SqlStore,
) -> None:
    now = time.time()
    parent = make_task()
    late = [child(parent, wait_deadline=now - 10 + i) for i in range(3)]
    patient = child(parent, wait_deadline=now + 60)
    forever = child(parent)
    await store.tasks.insert([parent, *late, patient, forever])
    first = await store.waits.expire_waits(now, 2, epoch=7)
    assert [t.id for t in first.cancelled] == [late[0].id, late[1].id]  # oldest deadline first
    second = await store.waits.expire_waits(now, 2, epoch=7)
    assert [t.id for t in second.cancelled] == [late[2].id]
    assert (await store.waits.expire_waits(now, 2, epoch=7)).cancelled == []
    assert await statuses(store, [*late, patient, forever]) == [S.CANCELLED] * 3 + [S.WAITING] * 2
    gone = await store.tasks.get(late[0].id)
    assert gone is not None and gone.error == REASON and gone.finished_at == now
    [*_, last] = await store.tasks.logs(late[0].id)
    assert (last.from_status, last.to_status, last.epoch) == (S.WAITING, S.CANCELLED, 7)
    assert last.message == REASON


async def test_a_released_task_is_not_cancelled_by_its_old_deadline(store: SqlStore) -> None:
    now = time.time()
    parent = make_task()
    kid = child(parent, wait_deadline=now + 1)
    await store.tasks.insert([parent, kid])
    await end(store, [parent])
    assert (await store.waits.expire_waits(now + 5, 10, epoch=1)).cancelled == []
    assert await statuses(store, [kid]) == [S.PENDING]


async def test_a_cancel_for_waiting_too_long_settles_the_grandchildren(store: SqlStore) -> None:
    now = time.time()
    parent = make_task()
    kid = child(parent, wait_deadline=now - 1)
    grandkid = child(kid)
    runner = child(kid, on_parent_failure="run")
    await store.tasks.insert([parent, kid, grandkid, runner])
    done = await store.waits.expire_waits(now, 10, epoch=1)
    assert {t.id for t in done.cancelled} == {kid.id, grandkid.id}
    assert [t.id for t in done.released] == [runner.id]
    got = await store.tasks.get(grandkid.id)
    assert got is not None and got.error == f"parent {kid.id} ended CANCELLED"


async def test_a_reopened_task_waits_as_long_again(store: SqlStore) -> None:
    created = time.time() - 100
    parent = make_task(created_at=created)
    kid = child(parent, created_at=created, wait_deadline=created + 30)
    await store.tasks.insert([parent, kid])
    await store.waits.expire_waits(created + 31, 10, epoch=1)
    now = time.time()
    reopened = await store.moves.reopen(kid.id, now, "manual retry")
    assert reopened is not None and reopened.status == S.WAITING
    assert reopened.wait_deadline is not None and abs(reopened.wait_deadline - (now + 30)) < 1e-3
