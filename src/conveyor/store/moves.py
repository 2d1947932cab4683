"""The hot path after creation: every change of a task's state, each a conditional write.

Each public method is one transaction. State moves are conditional updates whose row count
tells whether the move applied; the matching ``task_logs`` rows go in with one multi-row INSERT
in the same transaction, and lifecycle events are emitted only after the commit.

The batched moves (``start``, ``finish``) must never be blocked by one member: what an outcome
carries is made storable first (``storable.storable``: a result that is not exact JSON or is over
``max_result_bytes`` fails its task with the reason; error texts are cleaned and cut at
``values.MAX_ERROR_CHARS`` with a marker), and a batch the database still refuses is split
(``batches.isolate``) so only the refused member is set aside.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.audit import AuditEntry, task_view
from conveyor.batches import isolate, unavailable
from conveyor.errors import BackendUnavailable
from conveyor.events import Event, EventBus, EventKind
from conveyor.models import Priority, Task, TaskStatus, check_move
from conveyor.store import hot
from conveyor.store.audit import record
from conveyor.store.bulk import finish_update
from conveyor.store.database import Database
from conveyor.store.deps import Settled, has_parents, settle, settle_children
from conveyor.store.inserts import insert_rows
from conveyor.store.protocol import Finished, Outcome
from conveyor.store.rows import chunks, dumps, in_tenant, log_row, replaced, task_from_row
from conveyor.store.schema import task, task_logs
from conveyor.store.storable import MAX_MESSAGE_CHARS, storable
from conveyor.store.waits import restarted_wait
from conveyor.values import clean_text

S = TaskStatus
Planned = list[tuple[Outcome, Task]]
MAX_RESULT_BYTES = 1_048_576  # the default of Settings.max_result_bytes

log = logging.getLogger(__name__)


class SqlMoves:
    def __init__(
        self, db: Database, events: EventBus, max_result_bytes: int = MAX_RESULT_BYTES
    ) -> None:
        self._db = db
        self._events = events
        self._max_result = max_result_bytes

    async def start(self, task_ids: Sequence[str], worker_id: str, now: float) -> list[Task]:
        """Ids the store refuses (none it made ever are) are left out, as if taken elsewhere."""
        async def write(part: Sequence[str]) -> list[Task]:
            return await self._start(part, worker_id, now)

        started: list[Task] = []
        written = await isolate(list(task_ids), write)
        for ids, moved in written:
            if isinstance(moved, BackendUnavailable):
                continue
            if isinstance(moved, Exception):
                log.error("task id %r refused by the store on start: %s", ids[0], moved)
            else:
                started.extend(moved)
        self._events.emit([Event(EventKind.STARTED, t, now) for t in started])
        unavailable(written)
        return started

    async def _start(self, task_ids: Sequence[str], worker_id: str, now: float) -> list[Task]:
        started: list[Task] = []
        async with self._db.begin() as conn:
            for chunk in chunks(list(task_ids)):
                started.extend(await hot.start(conn, chunk, worker_id, now))
            await insert_rows(conn, task_logs, [
                log_row(t, S.PENDING, S.PROCESSING, now, "started", worker_id) for t in started
            ], _log_bytes)
        return started

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> Finished:
        """Record outcomes; one the store still refuses is recorded as FAILED with the reason
        instead, and if even that is refused it is left for the timeout sweep (logged)."""
        moved = Finished()
        fit = [storable(o, self._max_result) for o in outcomes]
        written = await isolate(fit, lambda p: self._finish(p, now))
        unavailable(written)  # the finisher retries; outcomes recorded already are dropped then
        for part, done in written:
            if isinstance(done, Exception):
                done = await self._finish_refused(part[0], done, now)
            moved.extend(done)
            moved.released.extend(done.released)
        return moved

    async def _finish_refused(self, o: Outcome, exc: Exception, now: float) -> Finished:
        log.warning("outcome of task %r refused by the store (%s); recording FAILED", o.task_id,
                    exc)
        failed = replace(o, status=S.FAILED, result=None, retry_at=None,
                         error=clean_text(f"the store refused this outcome: {exc}"))
        try:
            return await self._finish([failed], now)
        except BackendUnavailable:
            raise
        except Exception as again:  # one bad row must never block the rest
            log.error("outcome of task %r refused by the store: %s", o.task_id, again)
            return Finished()

    async def _finish(self, outcomes: Sequence[Outcome], now: float) -> Finished:
        """One transaction (run again if the database broke a deadlock with it) for the whole
        batch; its events after the commit."""
        if not outcomes:
            return Finished()

        async def work(conn: AsyncConnection) -> tuple[Planned, Settled]:
            return await _finish_in(conn, outcomes, now)

        planned, settled = await self._db.transaction(work)
        self._events.emit([Event(_outcome_event(o), after, now) for o, after in planned])
        self._emit_settled(settled, now)
        return Finished([after for _, after in planned], settled.released)

    def _emit_settled(self, settled: Settled, now: float) -> None:
        self._events.emit([Event(EventKind.CANCELLED, t, now) for t in settled.cancelled])

    async def _move_one(
        self, task_id: str, sources: Sequence[TaskStatus], target: TaskStatus, now: float,
        message: str, extra: dict[str, Any], kind: EventKind | None, tenant: str | None,
        audit: AuditEntry | None = None,
    ) -> Task | None:
        """One conditional write of one task of ``tenant`` (None: any) from any of
        ``sources``; logged when the status moves (a priority change in place is not a move of
        the state machine), audited when it applied."""
        async with self._db.begin() as conn:
            by_id = in_tenant(sa.select(task).where(task.c.id == task_id), tenant)
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
            before = task_view(task_from_row(row))
            await record(conn, audit, now, before=before, after=task_view(moved),
                         tenant=moved.tenant)
            # A cancel ends the task for good: its children's verdicts share the transaction
            # (children released by policy "run" are queued by the orphan sweep). A task
            # reopened to WAITING is released at once if its parents allow it.
            settled = await settle_children(conn, [moved], now)
            if moved.status == S.WAITING:
                again = await settle(conn, [moved.id], now)
                moved = next(iter(again.released + again.cancelled), moved)
        if kind is not None:
            self._events.emit([Event(kind, moved, now)])
        self._emit_settled(settled, now)
        return moved

    async def cancel_pending(
        self, task_id: str, now: float, message: str, *, tenant: str | None = None,
        audit: AuditEntry | None = None,
    ) -> Task | None:
        return await self._move_one(
            task_id, [S.PENDING, S.WAITING], S.CANCELLED, now, message, {"finished_at": now},
            EventKind.CANCELLED, tenant, audit,
        )

    async def reopen(
        self, task_id: str, now: float, message: str, *, tenant: str | None = None,
        audit: AuditEntry | None = None,
    ) -> Task | None:
        """A task with parents that was cancelled goes back to WAITING (§10: it never runs
        before its parents succeeded), settled at once; any other to PENDING. Edges never
        change after the insert, so reading them first is safe."""
        extra = {"retry_count": 0, "run_at": now, "finished_at": None, "error": None,
                 "result": None}
        async with self._db.connect() as conn:
            waits = await has_parents(conn, task_id)
        if waits:
            moved = await self._move_one(task_id, [S.CANCELLED], S.WAITING, now, message,
                                         {**extra, "wait_deadline": restarted_wait(now)},
                                         None, tenant, audit)
            if moved is not None:
                return moved
        return await self._move_one(
            task_id, [S.FAILED, S.TIMEOUT, S.CANCELLED], S.PENDING, now, message, extra,
            EventKind.RETRYING, tenant, audit,
        )

    async def set_priority(
        self, task_id: str, priority: Priority, now: float, *, tenant: str | None = None,
        audit: AuditEntry | None = None,
    ) -> Task | None:
        return await self._move_one(
            task_id, [S.PENDING], S.PENDING, now, "", {"priority": int(priority)}, None, tenant,
            audit,
        )


async def _finish_in(
    conn: AsyncConnection, outcomes: Sequence[Outcome], now: float
) -> tuple[Planned, Settled]:
    """One UPDATE (``store.bulk``) and one log INSERT for the whole batch, then the verdicts
    on the children of the tasks that ended for good (``store.deps``).

    An outcome that carries its task (``Outcome.task``: a worker's, as its start returned
    the row) is planned from that copy, not read again: the UPDATE is conditional on the
    copy's version and on PROCESSING, so an attempt cancelled, timed out or started again
    since (each bumped the version) is left as it is, as a read would have found it. Only
    outcomes without a task are read first (``hot.lock_for_finish``, locked). When the row
    count says some rows did not apply, a second read tells which did.

    The UPDATE names its rows in id order and the read locks them in id order, the order
    every move of many rows takes (then the children, whose ids a workflow puts after their
    parents'), so a workflow's cancel and a batch finishing its nodes queue behind one another
    rather than deadlock (and a deadlock the database still breaks runs the batch again,
    ``Database.transaction``). The children are looked up after the UPDATE: on SQLite a read
    before it runs before the transaction takes the write lock, so a child inserted in between
    would be missed.
    """
    unread = sorted({o.task_id for o in outcomes if o.task is None})
    read = {o.task_id: o.task for o in outcomes if o.task is not None}
    for chunk in chunks(unread):
        read.update((t.id, t) for t in await hot.lock_for_finish(conn, chunk))
    planned = _plan_outcomes(outcomes, read, now)
    if not planned:
        return [], Settled()
    result = await _write_outcomes(conn, planned, now)
    if result != len(planned):
        planned = await _confirm(conn, planned, now)
    logs = [row for o, after in planned for row in _outcome_logs(o, after, now)]
    await insert_rows(conn, task_logs, logs, _log_bytes)
    return planned, await settle_children(conn, [after for _, after in planned], now)


async def _write_outcomes(conn: AsyncConnection, planned: Planned, now: float) -> int:
    """The conditional UPDATE of the batch; returns how many rows it changed."""
    changed = 0
    rows = sorted((_finish_values(after) for _, after in planned), key=itemgetter("id"))
    # A few thousand bind parameters and a few MiB of text a statement at most.
    for chunk in chunks(rows, 200, weight=_text_bytes):
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
        retry = o.retry_at is not None
        if retry:
            check_move(o.status, S.PENDING)
        # One copy (it costs more than the rest of the plan): the final move, or straight
        # back to PENDING, due at ``retry_at``.
        after = replaced(
            before, status=S.PENDING if retry else o.status, result=o.result, error=o.error,
            finished_at=None if retry else now, version=before.version + 1,
            run_at=o.retry_at if o.retry_at is not None else before.run_at,
            retry_count=before.retry_count + (1 if retry and o.spend_retry else 0),
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


def _text_bytes(row: dict[str, Any]) -> int:
    return len(row["result"] or "") + len(row["error"] or "") + 256


def _log_bytes(row: Mapping[str, Any]) -> int:
    return len(row["message"]) + 128


def _versions(planned: Planned, task_id: str) -> set[int]:
    return {after.version for _, after in planned if after.id == task_id}


def _outcome_logs(o: Outcome, after: Task, now: float) -> list[dict[str, Any]]:
    message = o.message or (o.error or "")[:MAX_MESSAGE_CHARS]
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
