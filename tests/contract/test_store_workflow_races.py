"""A workflow cancel racing the finish of one of its running nodes, as real concurrent
transactions on MariaDB and PostgreSQL (SQLite has one writer, so it cannot deadlock).

The cancel locks every node of the workflow by id; the finish locks its task, then the task's
children to settle them. Where a child's id sorts before its parent's (a workflow stored before
node ids were numbered parents first, or children made by another API process in the same
millisecond) the two take the same rows in opposite orders. Whatever the order, both must land:
no deadlock may reach the caller, the parent ends SUCCESS, every other node CANCELLED, and no
child is released or cancelled twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conveyor.ids import new_ids
from conveyor.models import Task, TaskStatus
from conveyor.store.protocol import Outcome
from conveyor.store.sql import SqlStore
from conveyor.workflows import Workflow
from tests.contract.conftest import migrated_store
from tests.contract.store_support import make_task

S = TaskStatus
RACES = 40
CHILDREN = 40


@pytest.fixture(params=["mariadb", "postgres"])
async def server_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with migrated_store(request.param, tmp_path) as s:
        yield s


def fan_out(now: float, crossed: bool) -> tuple[Workflow, Task, list[Task]]:
    """A root and its children: numbered parents first as the service numbers a workflow,
    or ``crossed``, half the children's ids below the root's and half above, so locking by id
    takes some children before the root and some after."""
    ids = new_ids(CHILDREN + 2, now)
    root_id = ids[CHILDREN // 2 if crossed else 0]
    root = make_task(id=root_id)
    others = [i for i in ids[:-1] if i != root_id]
    kids = [make_task(id=i, status=S.WAITING, parents=(root_id,)) for i in others]
    nodes = {"root": root_id} | {f"c{n}": k.id for n, k in enumerate(kids)}
    return Workflow(ids[-1], root.tenant, "race", now, None, nodes), root, kids


async def race(store: SqlStore, crossed: bool) -> tuple[Workflow, Task, list[Task]]:
    now = time.time()
    flow, root, kids = fan_out(now, crossed)
    await store.workflows.create(flow, [root, *kids], now)
    [started] = await store.moves.start([root.id], "w1", now)
    finish = store.moves.finish([Outcome(root.id, started.attempt, S.SUCCESS, result={})],
                                time.time())
    cancel = store.workflows.cancel(flow, time.time(), None)
    await asyncio.gather(finish, cancel)  # either raising fails the test
    return flow, root, kids


@pytest.mark.parametrize("crossed", [False, True], ids=["parents-first", "crossed"])
async def test_cancel_and_a_nodes_finish_race_without_deadlock(
    server_store: SqlStore, crossed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    flows = await asyncio.gather(*(race(server_store, crossed) for _ in range(RACES)))
    for _flow, root, kids in flows:
        [stored_root] = await server_store.tasks.get_many([root.id])
        assert stored_root.status == S.SUCCESS
        stored = await server_store.tasks.get_many([k.id for k in kids])
        assert Counter(t.status for t in stored) == Counter({S.CANCELLED: len(kids)})
        for kid in kids:
            moves = [(x.from_status, x.to_status) for x in await server_store.tasks.logs(kid.id)]
            assert moves in ([(None, S.WAITING), (S.WAITING, S.CANCELLED)],
                             [(None, S.WAITING), (S.WAITING, S.PENDING),
                              (S.PENDING, S.CANCELLED)]), moves
    retried = [r for r in caplog.records if "deadlock" in r.getMessage()]
    if not crossed:  # rows taken in one order: nothing for the database to break
        assert retried == []


def test_fan_outs_number_their_nodes_as_asked() -> None:
    _, root, kids = fan_out(time.time(), crossed=True)
    assert {k.id < root.id for k in kids} == {True, False}
    _, root, kids = fan_out(time.time(), crossed=False)
    assert all(root.id < k.id for k in kids)
