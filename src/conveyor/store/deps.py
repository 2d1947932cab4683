"""Dependency edges and the release of WAITING tasks, inside the caller's transaction
(docs/design.md §10).

A parent's final move and the verdict on its children share one transaction (``moves.finish``
and ``cancel_pending`` call ``settle_children``), so a child is released or cancelled exactly
once: the children are read ``FOR UPDATE`` and every write is conditional on WAITING, so a
concurrent sweep or a second parent's finish cannot move a child twice. Work is batched by
ids, never by edge: per round, one SELECT of the children, one of their edges joined to their
parents (after parents that succeeded, only for children none of whose parents still runs: one
probe per chunk finds the others, so a big fan-in is not read again at every batch), one
UPDATE per chunk of released children (an executemany for those whose payload gets inputs),
one UPDATE per distinct reason for cancelled ones and one log INSERT. A cancelled child
cancels its own waiting children in the next round, up to ``MAX_ROUNDS`` rounds in the
transaction; a deeper chain is finished by the release sweep (``scheduler/releases.py``), as is
any child whose parents' commits this transaction could not yet see (MariaDB's snapshot).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.dependencies import Edge, Verdict, decide, edge_inputs, read_inputs
from conveyor.models import Task, TaskStatus
from conveyor.store import hot
from conveyor.store.database import Database
from conveyor.store.inserts import insert_rows
from conveyor.store.rows import by_ids, chunks, dumps, loads, log_row, select_tasks
from conveyor.store.schema import task, task_deps, task_logs

S = TaskStatus
MAX_ROUNDS = 20  # cascade depth settled in one transaction; deeper levels go to the sweep
FINAL = [str(s) for s in S if s.is_final]  # a parent in none of these may still succeed


@dataclass(slots=True)
class Settled:
    """What a settle moved: released tasks to place on their queues after the commit,
    cancelled ones for the events."""

    released: list[Task] = field(default_factory=list)
    cancelled: list[Task] = field(default_factory=list)


async def insert_edges(conn: AsyncConnection, children: Sequence[Task]) -> None:
    rows = [
        {"child_id": c.id, "parent_id": p, "tenant": c.tenant, "position": i,
         "policy": c.on_parent_failure, "inputs": _inputs_text(c, p)}
        for c in children for i, p in enumerate(c.parents)
    ]
    await insert_rows(conn, task_deps, rows, _edge_bytes)


def _edge_bytes(row: Mapping[str, Any]) -> int:
    return len(row["inputs"] or "") + 128


def _inputs_text(child: Task, parent_id: str) -> str | None:
    stored = edge_inputs(child, parent_id)
    return None if stored is None else dumps(stored)


async def has_parents(conn: AsyncConnection, task_id: str) -> bool:
    query = sa.select(task_deps.c.parent_id).where(task_deps.c.child_id == task_id).limit(1)
    return (await conn.execute(query)).first() is not None


async def children_of(conn: AsyncConnection, parent_ids: Sequence[str]) -> list[str]:
    found: list[str] = []
    for chunk in chunks(list(dict.fromkeys(parent_ids))):
        found.extend(await hot.children(conn, chunk))
    return list(dict.fromkeys(found))


async def settle_children(
    conn: AsyncConnection, ended: Sequence[Task], now: float
) -> Settled:
    """The verdicts on the children of tasks that just ended for good."""
    final = [t for t in ended if t.status.is_final]
    if not final:
        return Settled()
    children = await children_of(conn, [t.id for t in final])
    return await settle(conn, children, now,
                        after_success=all(t.status == S.SUCCESS for t in final))


async def settle(
    conn: AsyncConnection, child_ids: Sequence[str], now: float, *, after_success: bool = False
) -> Settled:
    """Release or cancel each WAITING task of ``child_ids`` whose parents allow it; cancelled
    ones cascade to their own children. ``after_success``: the caller's parents all just
    succeeded, so a child with a parent still running can only keep waiting (a failure is
    settled by the failing parent's own transaction) and its edges need not be read."""
    settled = Settled()
    frontier = list(child_ids)
    for _ in range(MAX_ROUNDS):
        if not frontier:
            break
        cancelled: list[Task] = []
        for chunk in chunks(sorted(set(frontier))):
            released, gone = await _settle_chunk(conn, chunk, now, after_success)
            settled.released.extend(released)
            cancelled.extend(gone)
        settled.cancelled.extend(cancelled)
        frontier = await children_of(conn, [t.id for t in cancelled])
        after_success = False  # the next round settles children of cancelled tasks
    return settled


async def _settle_chunk(
    conn: AsyncConnection, ids: Sequence[str], now: float, after_success: bool
) -> tuple[list[Task], list[Task]]:
    waiting = by_ids(ids).where(task.c.status == str(S.WAITING)).order_by(task.c.id)
    children = await select_tasks(conn, waiting.with_for_update())
    if children and after_success:
        blocked = await _blocked(conn, [c.id for c in children])
        children = [c for c in children if c.id not in blocked]
    if not children:
        return [], []
    edges = await _edges(conn, [c.id for c in children])
    verdicts = [(c, decide(c.payload, edges.get(c.id, []))) for c in children]
    released = await _release(conn, [(c, v) for c, v in verdicts if v.target == S.PENDING], now)
    cancelled = await _cancel(conn, [(c, v) for c, v in verdicts if v.target == S.CANCELLED],
                              now)
    logs = [log_row(t, S.WAITING, t.status, now, v.reason) for t, v in released + cancelled]
    if logs:
        await conn.execute(task_logs.insert(), logs)
    return [t for t, _ in released], [t for t, _ in cancelled]


async def _blocked(conn: AsyncConnection, child_ids: Sequence[str]) -> set[str]:
    """The children with a parent not yet final, found without reading all their edges: a
    fan-in of 10,000 finishing in batches of 50 would otherwise read 10,000 edges 200 times.
    Parents are looked at from the highest id down and the first one not final ends the
    look: parents run roughly in id order (a workflow numbers its nodes in creation order,
    queues are FIFO), so the one still running is found at once."""
    d, p = task_deps, task.alias("p")
    blocker = (
        sa.select(d.c.parent_id).select_from(d.join(p, p.c.id == d.c.parent_id))
        .where(d.c.child_id == task.c.id, p.c.status.not_in(FINAL))
        .order_by(d.c.parent_id.desc()).limit(1).scalar_subquery()
    )
    query = sa.select(task.c.id).where(task.c.id.in_(child_ids), blocker.is_not(None))
    return {r.id for r in await conn.execute(query)}


async def _edges(conn: AsyncConnection, child_ids: Sequence[str]) -> dict[str, list[Edge]]:
    d, p = task_deps, task.alias("p")
    query = (
        sa.select(d.c.child_id, d.c.parent_id, d.c.position, d.c.policy, d.c.inputs,
                  p.c.status, sa.case((d.c.inputs.isnot(None), p.c.result)).label("result"))
        .select_from(d.outerjoin(p, p.c.id == d.c.parent_id))
        .where(d.c.child_id.in_(child_ids))
    )
    found: dict[str, list[Edge]] = defaultdict(list)
    for r in await conn.execute(query):
        found[r.child_id].append(Edge(
            r.parent_id, r.position, r.policy, None if r.status is None else S(r.status),
            loads(r.result), read_inputs(loads(r.inputs), r.parent_id),
        ))
    return found


Moved = list[tuple[Task, Verdict]]


async def _release(conn: AsyncConnection, chosen: Moved, now: float) -> Moved:
    bump = {"updated_at": now, "version": task.c.version + 1}
    plain = [c.id for c, v in chosen if v.payload is None]
    for chunk in chunks(plain):
        await conn.execute(task.update().where(task.c.id.in_(chunk))
                           .values(status=str(S.PENDING), **bump))
    filled = [{"b_id": c.id, "b_payload": dumps(v.payload)} for c, v in chosen
              if v.payload is not None]
    if filled:
        await conn.execute(
            task.update().where(task.c.id == sa.bindparam("b_id"))
            .values(status=str(S.PENDING), payload=sa.bindparam("b_payload"), **bump), filled,
        )
    return [(_moved(c, S.PENDING, payload=v.payload or c.payload), v) for c, v in chosen]


async def _cancel(conn: AsyncConnection, chosen: Moved, now: float) -> Moved:
    by_reason: dict[str, list[str]] = defaultdict(list)
    for c, v in chosen:
        by_reason[v.reason].append(c.id)
    for reason, ids in by_reason.items():
        for chunk in chunks(ids):
            await conn.execute(
                task.update().where(task.c.id.in_(chunk)).values(
                    status=str(S.CANCELLED), error=reason, finished_at=now, updated_at=now,
                    version=task.c.version + 1,
                )
            )
    return [(_moved(c, S.CANCELLED, error=v.reason, finished_at=now), v) for c, v in chosen]


def _moved(before: Task, status: TaskStatus, **changes: Any) -> Task:
    return replace(before, status=status, version=before.version + 1, **changes)


async def waiting_page(
    conn: AsyncConnection, after_id: str | None, older_than: float, limit: int
) -> list[str]:
    """Ids of WAITING tasks untouched since ``older_than``, by id from ``after_id``."""
    query = (sa.select(task.c.id)
             .where(task.c.status == str(S.WAITING), task.c.updated_at < older_than)
             .order_by(task.c.id).limit(limit))
    if after_id is not None:
        query = query.where(task.c.id > after_id)
    return [r.id for r in await conn.execute(query)]


class SqlDeps:
    """The release sweep's side of the dependency tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def release_waiting(
        self, after_id: str | None, older_than: float, limit: int, now: float
    ) -> tuple[str | None, Settled]:
        """Settle one page of WAITING tasks untouched since ``older_than``, in one
        transaction; returns the last id seen (None: no more) and what moved."""
        async with self._db.begin() as conn:
            ids = await waiting_page(conn, after_id, older_than, limit)
            settled = await settle(conn, ids, now) if ids else Settled()
        return (ids[-1] if ids else None), settled
