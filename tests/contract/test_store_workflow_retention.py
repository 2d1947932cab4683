"""Retention of workflow rows (``retention.workflows``), on SQLite, MariaDB and PostgreSQL: a
workflow goes with its node rows once it is old enough and every one of its tasks ended that
long ago or is gone; one with a task still to run, or ended recently, is kept."""

from __future__ import annotations

import sqlalchemy as sa

from conveyor.config import RetentionSettings
from conveyor.ids import new_id
from conveyor.models import TaskStatus
from conveyor.scheduler.retention import workflow_target
from conveyor.store.schema import task, workflow_nodes
from conveyor.store.sql import SqlStore
from conveyor.workflows import Workflow
from tests.contract.store_support import make_task
from tests.contract.test_store_retention import DAY, NOW, purge_all

S = TaskStatus
POLICY = RetentionSettings(workflows=30 * DAY)


async def flow(store: SqlStore, created: float, *ends: tuple[S, float | None]) -> str:
    tasks = [make_task(status=s, created_at=created, run_at=created, finished_at=at)
             for s, at in ends]
    made = Workflow(new_id(created), "default", "w", created, None,
                    {f"n{i}": t.id for i, t in enumerate(tasks)})
    await store.workflows.create(made, tasks, created)
    return made.id


async def test_only_workflows_whose_tasks_all_ended_long_ago_or_are_gone_go(
    store: SqlStore,
) -> None:
    old, young = NOW - 40 * DAY, NOW - 10 * DAY
    ended = await flow(store, old, (S.SUCCESS, NOW - 39 * DAY), (S.FAILED, NOW - 35 * DAY))
    purged = await flow(store, old, (S.SUCCESS, NOW - 39 * DAY))
    async with store.db.begin() as conn:  # its task was purged already
        gone = (await conn.execute(sa.select(workflow_nodes.c.task_id).where(
            workflow_nodes.c.workflow_id == purged))).scalar_one()
        await conn.execute(task.delete().where(task.c.id == gone))
    running = await flow(store, old, (S.SUCCESS, NOW - 39 * DAY), (S.PENDING, None))
    recent = await flow(store, old, (S.SUCCESS, NOW - 39 * DAY), (S.CANCELLED, NOW - DAY))
    fresh = await flow(store, young, (S.SUCCESS, NOW - 10 * DAY))
    counts = await purge_all(store, [workflow_target(POLICY)], batch=1)
    assert counts == {"workflows": 2, "workflow_nodes": 3}
    for gone_id in (ended, purged):
        assert await store.workflows.get(gone_id, None) is None
    for kept in (running, recent, fresh):
        assert await store.workflows.get(kept, None) is not None
    assert len(await store.workflows.node_states(running)) == 2


async def test_zero_keeps_workflows_forever(store: SqlStore) -> None:
    assert not workflow_target(RetentionSettings(workflows=0)).enabled
