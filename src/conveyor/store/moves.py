"""The hot path after creation: every change of a task's state, each a conditional write.

Each public method is one transaction. State moves are conditional updates whose row count
tells whether the move applied; the matching ``task_logs`` rows go in with one multi-row INSERT
in the same transaction, and lifecycle events are emitted only after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.events import Event, EventBus, EventKind
from conveyor.models import Priority, Task, TaskStatus, check_move
from conveyor.store.bulk import finish_update
from conveyor.store.database import Database
from conveyor.store.protocol import Outcome
from conveyor.store.rows import by_ids, chunks, dumps, log_row, select_tasks, task_from_row
from conveyor.store.schema import task, task_logs

S = TaskStatus
Planned = list[tuple[Outcome, Task]]


class SqlMoves:
    def __init__(self, db: Database, events: EventBus) -> None:
        self._db = db
        self._events = events

    async def start(self, task_ids: Sequence[str], worker_id: str, now: float) -> list[Task]:
        if not task_ids:
            return []
        started: list[Task] = []
        async with self._db.begin() as conn:
            for chunk in chunks(list(task_ids)):
                await conn.execute(
                    task.update()
                    .where(task.c.id.in_(chunk), task.c.status == str(S.PENDING))
                    .values(
                        status=str(S.PROCESSING), attempt=task.c.attempt + 1,
                        worker_id=worker_id, started_at=now, finished_at=None,
                        updated_at=now, version=task.c.version + 1,
                    )
                )
                # Rows we just moved are locked by this transaction; the started_at stamp and
                # our worker id tell them apart from rows another process moved.
                mine = await select_tasks(conn, by_ids(chunk).where(
                    task.c.status == str(S.PROCESSING),
                    task.c.worker_id == worker_id, task.c.started_at == now,
                ))
                if mine:
                    logs = [log_row(t, S.PENDING, S.PROCESSING, now, "started", worker_id)
                            for t in mine]
                    await conn.execute(task_logs.insert(), logs)
                started.extend(mine)
        self._events.emit([Event(EventKind.STARTED, t, now) for t in started])
        return started

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> list[Task]:
        """One SELECT, one UPDATE (``store.bulk``) and one log INSERT for the whole batch.

        Each row's UPDATE is conditional on each row's version as read here, so a row changed
        meanwhile by another process is not overwritten; when the row count says some rows did
        not apply, a second read tells which did.
        """
        if not outcomes:
            return []
        async with self._db.begin() as conn:
            read = await select_tasks(conn, by_ids([o.task_id for o in outcomes]))
            planned = _plan_outcomes(outcomes, {t.id: t for t in read}, now)
            if not planned:
                return []
            result = await _write_outcomes(conn, planned, now)
            if result != len(planned):
                planned = await _confirm(conn, planned, now)
            logs = [row for o, after in planned for row in _outcome_logs(o, after, now)]
            if logs:
                await conn.execute(task_logs.insert(), logs)
        self._events.emit([Event(_outcome_event(o), after, now) for o, after in planned])
        return [after for _, after in planned]

    async def _move_one(
        self, task_id: str, sources: Sequence[TaskStatus], target: TaskStatus, now: float,
        message: str, extra: dict[str, Any], kind: EventKind | None,
    ) -> Task | None:
        """One conditional write of one task from any of ``sources``; logged when the status
        moves (a priority change in place is not a move of the state machine)."""
        async with self._db.begin() as conn:
            by_id = sa.select(task).where(task.c.id == task_id)
            row = (await conn.execute(by_id)).mappings().first()
            if row is None or TaskStatus(row["status"]) not in sources:
                return None
            source = TaskStatus(row["status"])
            result = await conn.execute(
                task.update()
                .where(task.c.id == task_id, task.c.status == str(source),
                       task.c.version == row["version"])
                .values(status=str(target), updated_at=now, version=task.c.version + 1, **extra)
            )
            if result.rowcount != 1:
                return None
            fresh = (await conn.execute(by_id)).mappings().one()
            moved = task_from_row(fresh)
            if source != target:
                log = log_row(moved, source, target, now, message)
                await conn.execute(task_logs.insert(), [log])
        if kind is not None:
            self._events.emit([Event(kind, moved, now)])
        return moved

    async def cancel_pending(self, task_id: str, now: float, message: str) -> Task | None:
        return await self._move_one(
            task_id, [S.PENDING], S.CANCELLED, now, message, {"finished_at": now},
            EventKind.CANCELLED,
        )

    async def reopen(self, task_id: str, now: float, message: str) -> Task | None:
        extra = {"retry_count": 0, "run_at": now, "finished_at": None, "error": None,
                 "result": None}
        return await self._move_one(
            task_id, [S.FAILED, S.TIMEOUT, S.CANCELLED], S.PENDING, now, message, extra,
            EventKind.RETRYING,
        )

    async def set_priority(self, task_id: str, priority: Priority, now: float) -> Task | None:
        return await self._move_one(
            task_id, [S.PENDING], S.PENDING, now, "", {"priority": int(priority)}, None
        )


async def _write_outcomes(conn: AsyncConnection, planned: Planned, now: float) -> int:
    """The conditional UPDATE of the batch; returns how many rows it changed."""
    changed = 0
    rows = [_finish_values(after) for _, after in planned]
    for chunk in chunks(rows, 200):  # a few thousand bind parameters a statement at most
        sql, params = finish_update(conn.dialect.name, conn.dialect.paramstyle, chunk, now)
        changed += (await conn.exec_driver_sql(sql, params)).rowcount
    return changed


async def _confirm(conn: AsyncConnection, planned: Planned, now: float) -> Planned:
    rows = await conn.execute(
        sa.select(task.c.id, task.c.version, task.c.updated_at, task.c.status)
        .where(task.c.id.in_([after.id for _, after in planned]))
    )
    landed = {
        r.id for r in rows if r.updated_at == now and r.version in _versions(planned, r.id)
    }
    return [(o, after) for o, after in planned if after.id in landed]


def _plan_outcomes(outcomes: Sequence[Outcome], current: dict[str, Task], now: float) -> Planned:
    """Pair each applicable outcome with the task as it will be; drop outcomes of superseded
    attempts and second answers for the same attempt."""
    planned: Planned = []
    seen: set[str] = set()
    for o in outcomes:
        before = current.get(o.task_id)
        if before is None or before.status != S.PROCESSING or before.attempt != o.attempt:
            continue
        if o.task_id in seen:
            continue
        seen.add(o.task_id)
        check_move(S.PROCESSING, o.status)
        after = replace(
            before, status=o.status, result=o.result, error=o.error, finished_at=now,
            version=before.version + 1,
        )
        if o.retry_at is not None:
            check_move(o.status, S.PENDING)
            after = replace(
                after, status=S.PENDING, run_at=o.retry_at, finished_at=None,
                retry_count=before.retry_count + (1 if o.spend_retry else 0),
            )
        planned.append((o, after))
    return planned


def _finish_values(after: Task) -> dict[str, Any]:
    return {
        "id": after.id, "old_version": after.version - 1, "status": str(after.status),
        "result": None if after.result is None else dumps(after.result),
        "error": after.error, "finished_at": after.finished_at, "run_at": after.run_at,
        "retry_count": after.retry_count,
    }


def _versions(planned: Planned, task_id: str) -> set[int]:
    return {after.version for _, after in planned if after.id == task_id}


def _outcome_logs(o: Outcome, after: Task, now: float) -> list[dict[str, Any]]:
    message = o.message or (o.error or "")[:2000]
    logs = [log_row(after, S.PROCESSING, o.status, now, message, o.worker_id, o.epoch)]
    if o.retry_at is not None:
        note = f"retry {after.retry_count}/{after.max_retries} due at {o.retry_at:.3f}"
        if not o.spend_retry:
            note = f"attempt lost ({message}); rerun due at {o.retry_at:.3f}"
        logs.append(log_row(after, o.status, S.PENDING, now, note, o.worker_id, o.epoch))
    return logs


def _outcome_event(outcome: Outcome) -> EventKind:
    if outcome.retry_at is not None:
        return EventKind.RETRYING
    return {
        S.SUCCESS: EventKind.SUCCEEDED,
        S.FAILED: EventKind.FAILED,
        S.TIMEOUT: EventKind.TIMED_OUT,
        S.CANCELLED: EventKind.CANCELLED,
    }[outcome.status]
