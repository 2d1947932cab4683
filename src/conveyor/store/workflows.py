"""Workflows in SQL (docs/design.md §10): every node of one in one transaction, its view, its
cancel and retry, each filtered by tenant in SQL.

Cancel and retry move many tasks at once, by id lists in chunks (never a statement per node):
each is one transaction that reads the nodes' tasks ``FOR UPDATE``, moves them conditional on
the status read, writes their log rows in one INSERT and the action's audit row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.audit import AuditEntry
from conveyor.events import Event, EventBus, EventKind
from conveyor.models import Task, TaskStatus
from conveyor.store.audit import record
from conveyor.store.database import Database
from conveyor.store.deps import Settled, settle, settle_children
from conveyor.store.inserts import insert_rows
from conveyor.store.rows import chunks, in_tenant, log_row, select_tasks
from conveyor.store.schema import task, task_deps, task_logs, workflow_nodes, workflows
from conveyor.store.tasks import insert_in
from conveyor.store.waits import restarted_wait
from conveyor.workflows import Workflow

S = TaskStatus
CANCELLABLE = (S.WAITING, S.PENDING)
REOPENABLE = (S.FAILED, S.TIMEOUT, S.CANCELLED)


@dataclass(frozen=True, slots=True)
class WorkflowCancel:
    cancelled: list[Task]  # WAITING / PENDING nodes (and what their cancel cascaded to)
    running: list[Task]  # PROCESSING nodes: their workers are to be signalled


class SqlWorkflows:
    def __init__(self, db: Database, events: EventBus) -> None:
        self._db = db
        self._events = events

    async def create(self, flow: Workflow, tasks: Sequence[Task], now: float) -> list[Task]:
        """The workflow row, its node rows and its tasks (with their edges), together; returns
        the tasks as stored (roots PENDING, the others WAITING)."""
        async with self._db.begin() as conn:
            fresh, _ = await insert_in(conn, tasks, now)
            await conn.execute(workflows.insert().values(
                id=flow.id, tenant=flow.tenant, name=flow.name, owner=flow.owner,
                created_at=flow.created_at, nodes=len(flow.nodes)))
            rows = [{"workflow_id": flow.id, "node": n, "task_id": t}
                    for n, t in flow.nodes.items()]
            await insert_rows(conn, workflow_nodes, rows)
        self._events.emit([Event(EventKind.CREATED, t, now) for t in fresh])
        return fresh

    async def get(self, workflow_id: str, tenant: str | None) -> Workflow | None:
        async with self._db.connect() as conn:
            return await _get(conn, workflow_id, tenant)

    async def node_states(self, workflow_id: str) -> dict[str, TaskStatus]:
        """Node → its task's status (a purged task is left out)."""
        query = (sa.select(workflow_nodes.c.node, task.c.status)
                 .select_from(workflow_nodes.join(task, task.c.id == workflow_nodes.c.task_id))
                 .where(workflow_nodes.c.workflow_id == workflow_id))
        return {r.node: S(r.status) for r in await self._db.rows(query)}

    async def edges(self, flow: Workflow) -> dict[str, list[str]]:
        """Node → the nodes it runs after, in their order. The parents' names come from
        ``flow.nodes`` rather than a second join on ``workflow_nodes``: without statistics,
        SQLite's planner probed that join by ``workflow_id`` and read 10,000 nodes times 10,000
        nodes (minutes for one workflow)."""
        names = {task_id: node for node, task_id in flow.nodes.items()}
        query = (sa.select(workflow_nodes.c.node, task_deps.c.parent_id)
                 .select_from(workflow_nodes.join(
                     task_deps, task_deps.c.child_id == workflow_nodes.c.task_id))
                 .where(workflow_nodes.c.workflow_id == flow.id)
                 .order_by(workflow_nodes.c.node, task_deps.c.position))
        found: dict[str, list[str]] = {}
        for r in await self._db.rows(query):
            if (parent := names.get(r["parent_id"])) is not None:
                found.setdefault(r["node"], []).append(parent)
        return found

    async def list_workflows(
        self, tenant: str | None, name: str | None, cursor: str | None, limit: int
    ) -> list[Workflow]:
        """Newest first, without their nodes (``nodes`` empty)."""
        query = in_tenant(sa.select(workflows), tenant, workflows).order_by(
            workflows.c.id.desc()).limit(limit)
        if name is not None:
            query = query.where(workflows.c.name == name)
        if cursor is not None:
            query = query.where(workflows.c.id < cursor)
        return [_flow(r, {}) for r in await self._db.rows(query)]

    async def cancel(
        self, flow: Workflow, now: float, audit: AuditEntry | None
    ) -> WorkflowCancel:
        """One transaction, run again if the database broke a deadlock with it (a node's
        finish takes the node, then its children: where a child's id sorts before its
        parent's, that is the other order)."""

        async def work(conn: AsyncConnection) -> tuple[WorkflowCancel, Settled]:
            return await _cancel_in(conn, flow, now, audit)

        done, outside = await self._db.transaction(work)
        self._events.emit([Event(EventKind.CANCELLED, t, now)
                           for t in done.cancelled + outside.cancelled])
        return done

    async def retry(self, flow: Workflow, now: float, audit: AuditEntry | None) -> list[Task]:
        """Reopen every FAILED / TIMEOUT / CANCELLED node: one with parents that was cancelled
        goes back to WAITING (and is released at once if its parents all succeeded), the
        others to PENDING. Returns the nodes now PENDING, to place on their queues."""
        async with self._db.begin() as conn:
            tasks = await _locked(conn, flow)
            chosen = [t for t in tasks if t.status in REOPENABLE]
            if not chosen:
                return []
            with_parents = await _with_parents(conn, [t.id for t in chosen])
            reopened: list[tuple[Task, TaskStatus]] = []
            for target in (S.PENDING, S.WAITING):
                ids = {t.id for t in chosen if _reopen_to(t, with_parents) == target}
                for chunk in chunks(sorted(ids)):
                    await conn.execute(
                        task.update().where(task.c.id.in_(chunk),
                                            task.c.status.in_([str(s) for s in REOPENABLE]))
                        .values(status=str(target), retry_count=0, run_at=now, error=None,
                                result=None, finished_at=None, updated_at=now,
                                wait_deadline=restarted_wait(now),
                                version=task.c.version + 1))
                reopened += [(replace(t, status=target, retry_count=0, run_at=now, error=None,
                                      result=None, finished_at=None, version=t.version + 1),
                              t.status) for t in chosen if t.id in ids]
            await _logs(conn, reopened, now, "workflow retry")
            waiting = [t.id for t, _ in reopened if t.status == S.WAITING]
            released = (await settle(conn, waiting, now)).released
            await record(conn, audit, now, before={"reopened": 0},
                         after={"reopened": len(reopened)}, tenant=flow.tenant)
        pending = [t for t, _ in reopened if t.status == S.PENDING]
        self._events.emit([Event(EventKind.RETRYING, t, now) for t in pending])
        return pending + released


async def _cancel_in(
    conn: AsyncConnection, flow: Workflow, now: float, audit: AuditEntry | None
) -> tuple[WorkflowCancel, Settled]:
    tasks = await _locked(conn, flow)
    chosen = [t for t in tasks if t.status in CANCELLABLE]
    for chunk in chunks([t.id for t in chosen]):
        await conn.execute(
            task.update().where(task.c.id.in_(chunk),
                                task.c.status.in_([str(s) for s in CANCELLABLE]))
            .values(status=str(S.CANCELLED), error="workflow cancelled",
                    finished_at=now, updated_at=now, version=task.c.version + 1))
    moved = [replace(t, status=S.CANCELLED, error="workflow cancelled", finished_at=now,
                     version=t.version + 1) for t in chosen]
    await _logs(conn, [(t, before.status) for t, before in zip(moved, chosen, strict=True)],
                now, "workflow cancelled")
    outside = await settle_children(conn, moved, now)  # children of other workflows
    running = [t for t in tasks if t.status == S.PROCESSING]
    await record(conn, audit, now, before={"state": "RUNNING"},
                 after={"cancelled": len(moved), "signalled": len(running)}, tenant=flow.tenant)
    return WorkflowCancel(moved, running), outside


def _reopen_to(t: Task, with_parents: set[str]) -> TaskStatus:
    return S.WAITING if t.status == S.CANCELLED and t.id in with_parents else S.PENDING


async def _with_parents(conn: AsyncConnection, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(list(ids)):
        query = sa.select(task_deps.c.child_id).where(task_deps.c.child_id.in_(chunk))
        found |= {r.child_id for r in await conn.execute(query)}
    return found


async def _logs(
    conn: AsyncConnection, moved: Sequence[tuple[Task, TaskStatus]], now: float, message: str
) -> None:
    rows = [log_row(t, source, t.status, now, message) for t, source in moved]
    for chunk in chunks(rows):
        await conn.execute(task_logs.insert(), list(chunk))


async def _locked(conn: AsyncConnection, flow: Workflow) -> list[Task]:
    found: list[Task] = []
    for chunk in chunks(sorted(flow.nodes.values())):
        query = sa.select(task).where(task.c.id.in_(chunk)).order_by(task.c.id)
        found.extend(await select_tasks(conn, query.with_for_update()))
    return found


async def _get(conn: AsyncConnection, workflow_id: str, tenant: str | None) -> Workflow | None:
    query = in_tenant(sa.select(workflows).where(workflows.c.id == workflow_id), tenant,
                      workflows)
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    nodes = await conn.execute(
        sa.select(workflow_nodes.c.node, workflow_nodes.c.task_id)
        .where(workflow_nodes.c.workflow_id == workflow_id))
    return _flow(row, {r.node: r.task_id for r in nodes})


def _flow(row: Any, nodes: dict[str, str]) -> Workflow:
    return Workflow(row["id"], row["tenant"], row["name"], row["created_at"], row["owner"],
                    nodes)
