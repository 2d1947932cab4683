"""``SqlStore``: the store contract on SQLAlchemy Core, one code path for SQLite, MariaDB/MySQL
and PostgreSQL.

Each public method is one transaction. State moves are conditional updates whose row count
tells whether the move applied; the matching ``task_logs`` rows go in with one multi-row INSERT
in the same transaction, and lifecycle events are emitted only after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from conveyor.apikeys import ApiKey, Scope
from conveyor.errors import BackendUnavailable, Conflict
from conveyor.events import Event, EventBus, EventKind
from conveyor.models import (
    Backoff,
    Priority,
    Task,
    TaskConfig,
    TaskLog,
    TaskStatus,
    WorkerInfo,
    check_move,
)
from conveyor.store.bulk import finish_update
from conveyor.store.protocol import Created, Outcome, Page, TaskFilter
from conveyor.store.schema import (
    api_keys,
    leader_history,
    task,
    task_config,
    task_logs,
    worker_registry,
)
from conveyor.store.urls import database_url

S = TaskStatus
_CHUNK = 500  # ids per IN (...) list: well inside every driver's parameter limit


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def task_from_row(row: sa.RowMapping) -> Task:
    return Task(
        id=row["id"],
        task_type=row["task_type"],
        priority=Priority(row["priority"]),
        payload=orjson.loads(row["payload"]),
        status=TaskStatus(row["status"]),
        max_retries=row["max_retries"],
        timeout=row["timeout"],
        created_at=row["created_at"],
        run_at=row["run_at"],
        metadata=orjson.loads(row["metadata"]),
        result=_loads(row["result"]),
        error=row["error"],
        retry_count=row["retry_count"],
        attempt=row["attempt"],
        worker_id=row["worker_id"],
        idempotency_key=row["idempotency_key"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        version=row["version"],
        callback_url=row["callback_url"],
        owner=row["owner"],
    )


def task_to_row(t: Task, now: float) -> dict[str, Any]:
    return {
        "id": t.id,
        "task_type": t.task_type,
        "priority": int(t.priority),
        "status": str(t.status),
        "payload": _dumps(t.payload),
        "metadata": _dumps(t.metadata),
        "result": None if t.result is None else _dumps(t.result),
        "error": t.error,
        "retry_count": t.retry_count,
        "max_retries": t.max_retries,
        "timeout": t.timeout,
        "attempt": t.attempt,
        "worker_id": t.worker_id,
        "idempotency_key": t.idempotency_key,
        "callback_url": t.callback_url,
        "created_at": t.created_at,
        "run_at": t.run_at,
        "started_at": t.started_at,
        "finished_at": t.finished_at,
        "updated_at": now,
        "version": t.version,
        "owner": t.owner,
    }


def _log_row(
    t: Task, source: TaskStatus | None, target: TaskStatus, now: float, message: str,
    worker_id: str | None = None, epoch: int | None = None,
) -> dict[str, Any]:
    if source is not None:
        check_move(source, target)
    return {
        "task_id": t.id, "attempt": t.attempt, "from_status": source and str(source),
        "to_status": str(target), "at": now, "message": message,
        "worker_id": worker_id, "epoch": epoch,
    }


def _config_from_row(row: sa.RowMapping) -> TaskConfig:
    backoff = _loads(row["backoff"])
    return TaskConfig(
        task_type=row["task_type"],
        executor=row["executor"],
        executor_config=orjson.loads(row["executor_config"]),
        timeout=row["timeout"],
        max_retries=row["max_retries"],
        priority=None if row["priority"] is None else Priority(row["priority"]),
        backoff=None if backoff is None else Backoff(**backoff),
        concurrency_limit=row["concurrency_limit"],
        rate_limit=row["rate_limit"],
        enabled=bool(row["enabled"]),
        updated_at=row["updated_at"],
    )


def _outcome_event(outcome: Outcome) -> EventKind:
    if outcome.retry_at is not None:
        return EventKind.RETRYING
    return {
        S.SUCCESS: EventKind.SUCCEEDED,
        S.FAILED: EventKind.FAILED,
        S.TIMEOUT: EventKind.TIMED_OUT,
        S.CANCELLED: EventKind.CANCELLED,
    }[outcome.status]


class SqlStore:
    """The durable record; see ``store.protocol.TaskStore`` for the contract."""

    def __init__(self, url: str, events: EventBus | None = None, echo: bool = False) -> None:
        self.url = database_url(url)
        self.events = events or EventBus()
        self.engine: AsyncEngine = _make_engine(self.url, echo)

    async def migrate(self) -> None:
        from conveyor.store.migrate import upgrade

        await upgrade(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (DBAPIError, OSError) as exc:
            raise BackendUnavailable(f"database unreachable: {exc}") from exc

    # -- create ---------------------------------------------------------------------------

    async def insert(self, tasks: Sequence[Task]) -> list[Created]:
        if not tasks:
            return []
        now = max(t.created_at for t in tasks)
        try:
            async with self.engine.begin() as conn:
                existing = await self._existing_by_key(conn, tasks)
                fresh = [t for t in tasks if _key(t) not in existing]
                fresh = list({_key(t) or t.id: t for t in fresh}.values())
                await self._insert_rows(conn, fresh, now)
        except IntegrityError:
            # A concurrent submit took one of the keys between our read and our write.
            return [await self._insert_one(t, now) for t in tasks]
        created_ids = {t.id for t in fresh}
        by_key = {_key(t): t for t in fresh if _key(t)}
        result = [
            Created(t, True) if t.id in created_ids
            else Created(existing.get(_key(t)) or by_key[_key(t)], False)
            for t in tasks
        ]
        self.events.emit([Event(EventKind.CREATED, t, now) for t in fresh])
        return result

    async def _insert_rows(self, conn: AsyncConnection, fresh: Sequence[Task], now: float) -> None:
        for chunk in _chunks(fresh):
            await conn.execute(task.insert(), [task_to_row(t, now) for t in chunk])
            logs = [_log_row(t, None, S.PENDING, now, "created") for t in chunk]
            await conn.execute(task_logs.insert(), logs)

    async def _insert_one(self, t: Task, now: float) -> Created:
        try:
            async with self.engine.begin() as conn:
                await self._insert_rows(conn, [t], now)
        except IntegrityError:
            async with self.engine.connect() as conn:
                found = await self._existing_by_key(conn, [t])
            if _key(t) in found:
                return Created(found[_key(t)], False)
            raise
        self.events.emit([Event(EventKind.CREATED, t, now)])
        return Created(t, True)

    async def _existing_by_key(
        self, conn: AsyncConnection, tasks: Sequence[Task]
    ) -> dict[tuple[str, str] | None, Task]:
        keyed = [t for t in tasks if t.idempotency_key]
        if not keyed:
            return {}
        found: dict[tuple[str, str] | None, Task] = {}
        for chunk in _chunks(keyed):
            conds = [
                sa.and_(
                    task.c.task_type == t.task_type, task.c.idempotency_key == t.idempotency_key
                )
                for t in chunk
            ]
            rows = await conn.execute(sa.select(task).where(sa.or_(*conds)))
            for row in rows.mappings():
                existing = task_from_row(row)
                found[_key(existing)] = existing
        return found

    # -- read -----------------------------------------------------------------------------

    async def get(self, task_id: str) -> Task | None:
        found = await self.get_many([task_id])
        return found[0] if found else None

    async def get_many(self, task_ids: Sequence[str]) -> list[Task]:
        out: list[Task] = []
        async with self.engine.connect() as conn:
            for chunk in _chunks(list(task_ids)):
                rows = await conn.execute(sa.select(task).where(task.c.id.in_(chunk)))
                out.extend(task_from_row(r) for r in rows.mappings())
        return out

    async def list_tasks(self, where: TaskFilter, cursor: str | None, limit: int) -> Page:
        query = sa.select(task).order_by(task.c.id.desc()).limit(limit + 1)
        if where.status is not None:
            query = query.where(task.c.status == str(where.status))
        if where.task_type is not None:
            query = query.where(task.c.task_type == where.task_type)
        if where.created_from is not None:
            query = query.where(task.c.created_at >= where.created_from)
        if where.created_to is not None:
            query = query.where(task.c.created_at < where.created_to)
        if cursor is not None:
            query = query.where(task.c.id < cursor)
        async with self.engine.connect() as conn:
            rows = [task_from_row(r) for r in (await conn.execute(query)).mappings()]
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].id if more and rows else None)

    async def logs(self, task_id: str) -> list[TaskLog]:
        query = sa.select(task_logs).where(task_logs.c.task_id == task_id).order_by(task_logs.c.id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            TaskLog(
                task_id=r["task_id"], attempt=r["attempt"],
                from_status=None if r["from_status"] is None else TaskStatus(r["from_status"]),
                to_status=TaskStatus(r["to_status"]), at=r["at"], message=r["message"],
                worker_id=r["worker_id"], epoch=r["epoch"], id=r["id"],
            )
            for r in rows
        ]

    # -- moves ----------------------------------------------------------------------------

    async def start(self, task_ids: Sequence[str], worker_id: str, now: float) -> list[Task]:
        if not task_ids:
            return []
        started: list[Task] = []
        async with self.engine.begin() as conn:
            for chunk in _chunks(list(task_ids)):
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
                rows = await conn.execute(
                    sa.select(task).where(
                        task.c.id.in_(chunk), task.c.status == str(S.PROCESSING),
                        task.c.worker_id == worker_id, task.c.started_at == now,
                    )
                )
                mine = [task_from_row(r) for r in rows.mappings()]
                if mine:
                    logs = [_log_row(t, S.PENDING, S.PROCESSING, now, "started", worker_id)
                            for t in mine]
                    await conn.execute(task_logs.insert(), logs)
                started.extend(mine)
        self.events.emit([Event(EventKind.STARTED, t, now) for t in started])
        return started

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> list[Task]:
        """One SELECT, one UPDATE (``store.bulk``) and one log INSERT for the whole batch.

        Each row's UPDATE is conditional on each row's version as read here, so a row changed
        meanwhile by another process is not overwritten; when the row count says some rows did
        not apply, a second read tells which did.
        """
        if not outcomes:
            return []
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                sa.select(task).where(task.c.id.in_([o.task_id for o in outcomes]))
            )
            current = {r["id"]: task_from_row(r) for r in rows.mappings()}
            planned = _plan_outcomes(outcomes, current, now)
            if not planned:
                return []
            result = await self._write_outcomes(conn, planned, now)
            if result != len(planned):
                planned = await self._confirm(conn, planned, now)
            logs = [row for o, after in planned for row in _outcome_logs(o, after, now)]
            if logs:
                await conn.execute(task_logs.insert(), logs)
        self.events.emit([Event(_outcome_event(o), after, now) for o, after in planned])
        return [after for _, after in planned]

    @staticmethod
    async def _write_outcomes(
        conn: AsyncConnection, planned: list[tuple[Outcome, Task]], now: float
    ) -> int:
        """The conditional UPDATE of the batch; returns how many rows it changed."""
        changed = 0
        rows = [_finish_values(after) for _, after in planned]
        for chunk in _chunks(rows, 200):  # a few thousand bind parameters a statement at most
            sql, params = finish_update(conn.dialect.name, conn.dialect.paramstyle, chunk, now)
            changed += (await conn.exec_driver_sql(sql, params)).rowcount
        return changed

    async def _confirm(
        self, conn: AsyncConnection, planned: list[tuple[Outcome, Task]], now: float
    ) -> list[tuple[Outcome, Task]]:
        rows = await conn.execute(
            sa.select(task.c.id, task.c.version, task.c.updated_at, task.c.status)
            .where(task.c.id.in_([after.id for _, after in planned]))
        )
        landed = {
            r.id for r in rows if r.updated_at == now and r.version in _versions(planned, r.id)
        }
        return [(o, after) for o, after in planned if after.id in landed]

    async def _move_one(
        self, task_id: str, sources: Sequence[TaskStatus], target: TaskStatus, now: float,
        message: str, extra: dict[str, Any], kind: EventKind | None,
    ) -> Task | None:
        """One conditional write of one task from any of ``sources``; logged when the status
        moves (a priority change in place is not a move of the state machine)."""
        async with self.engine.begin() as conn:
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
                log = _log_row(moved, source, target, now, message)
                await conn.execute(task_logs.insert(), [log])
        if kind is not None:
            self.events.emit([Event(kind, moved, now)])
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

    # -- sweeps ---------------------------------------------------------------------------

    async def overdue(self, now: float, grace: float, limit: int) -> list[Task]:
        deadline = task.c.started_at + task.c.timeout + grace
        query = (
            sa.select(task)
            .where(task.c.status == str(S.PROCESSING), deadline < now)
            .limit(limit)
        )
        return await self._select(query)

    async def processing_on(self, worker_id: str) -> list[Task]:
        query = sa.select(task).where(
            task.c.worker_id == worker_id, task.c.status == str(S.PROCESSING)
        )
        return await self._select(query)

    async def pending_page(
        self, after_id: str | None, created_before: float, limit: int
    ) -> list[Task]:
        query = (
            sa.select(task)
            .where(task.c.status == str(S.PENDING), task.c.updated_at < created_before)
            .order_by(task.c.id)
            .limit(limit)
        )
        if after_id is not None:
            query = query.where(task.c.id > after_id)
        return await self._select(query)

    async def _select(self, query: sa.Select[Any]) -> list[Task]:
        async with self.engine.connect() as conn:
            return [task_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def max_epoch(self) -> int:
        async with self.engine.connect() as conn:
            logged = await conn.scalar(sa.select(sa.func.max(task_logs.c.epoch)))
            leased = await conn.scalar(sa.select(sa.func.max(leader_history.c.epoch)))
        return max(int(logged or 0), int(leased or 0))

    async def record_epoch(self, epoch: int, holder: str, now: float) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    leader_history.insert().values(epoch=epoch, holder=holder, acquired_at=now)
                )
        except IntegrityError as exc:
            raise Conflict(f"epoch {epoch} was handed out before") from exc

    async def recent(self, since: float) -> tuple[int, dict[str, int]]:
        created = sa.select(sa.func.count()).where(task.c.created_at >= since)
        finished = (
            sa.select(task.c.status, sa.func.count())
            .where(task.c.finished_at >= since)
            .group_by(task.c.status)
        )
        async with self.engine.connect() as conn:
            count = int(await conn.scalar(created) or 0)
            by_status = {r[0]: int(r[1]) for r in await conn.execute(finished)}
        return count, by_status

    async def count_by_status(self) -> dict[tuple[str, str], int]:
        query = sa.select(task.c.task_type, task.c.status, sa.func.count()).group_by(
            task.c.task_type, task.c.status
        )
        async with self.engine.connect() as conn:
            return {(r[0], r[1]): int(r[2]) for r in await conn.execute(query)}

    # -- task types -----------------------------------------------------------------------

    async def get_config(self, task_type: str) -> TaskConfig | None:
        query = sa.select(task_config).where(task_config.c.task_type == task_type)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _config_from_row(row)

    async def list_configs(self) -> list[TaskConfig]:
        query = sa.select(task_config).order_by(task_config.c.task_type)
        async with self.engine.connect() as conn:
            return [_config_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def put_config(self, config: TaskConfig) -> TaskConfig:
        row = {
            "executor": config.executor,
            "executor_config": _dumps(config.executor_config),
            "timeout": config.timeout,
            "max_retries": config.max_retries,
            "priority": None if config.priority is None else int(config.priority),
            "backoff": None if config.backoff is None else _dumps(
                {"base": config.backoff.base, "factor": config.backoff.factor,
                 "cap": config.backoff.cap, "jitter": config.backoff.jitter}),
            "concurrency_limit": config.concurrency_limit,
            "rate_limit": config.rate_limit,
            "enabled": config.enabled,
            "updated_at": config.updated_at,
        }
        await self._upsert(task_config, "task_type", config.task_type, row)
        return config

    async def delete_config(self, task_type: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                task_config.delete().where(task_config.c.task_type == task_type)
            )
        return bool(result.rowcount)

    async def _upsert(self, table: sa.Table, key: str, value: str, row: dict[str, Any]) -> None:
        """Update-then-insert: portable across the three databases; a lost insert race
        retries as an update. The two run in separate transactions: in one, two first inserts
        deadlock on MariaDB (each UPDATE of a missing key gap-locks the same range, then each
        INSERT waits for the other's gap lock)."""
        for _ in range(3):
            try:
                async with self.engine.begin() as conn:
                    result = await conn.execute(
                        table.update().where(table.c[key] == value).values(**row)
                    )
                if result.rowcount:
                    return
                async with self.engine.begin() as conn:
                    await conn.execute(table.insert().values(**{key: value}, **row))
                return
            except IntegrityError:
                continue

    # -- API keys -------------------------------------------------------------------------

    async def put_key(self, key: ApiKey) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(api_keys.insert().values(
                key_id=key.key_id, secret_hash=key.secret_hash, scope=key.scope.label,
                name=key.name, created_at=key.created_at, revoked_at=key.revoked_at,
            ))

    async def get_key(self, key_id: str) -> ApiKey | None:
        query = sa.select(api_keys).where(api_keys.c.key_id == key_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _key_from_row(row)

    async def list_keys(self) -> list[ApiKey]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at)
        async with self.engine.connect() as conn:
            return [_key_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def revoke_key(self, key_id: str, now: float) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return bool(result.rowcount)

    # -- workers --------------------------------------------------------------------------

    async def record_workers(self, workers: Sequence[WorkerInfo], state: str, now: float) -> None:
        for w in workers:
            row = {
                "host": w.host, "pid": w.pid, "capacity": w.capacity,
                "types": _dumps(list(w.types)), "last_heartbeat": now, "state": state,
            }
            async with self.engine.begin() as conn:
                updated = await conn.execute(
                    worker_registry.update()
                    .where(worker_registry.c.worker_id == w.worker_id).values(**row)
                )
            if updated.rowcount == 0:
                await self._upsert(
                    worker_registry, "worker_id", w.worker_id, {**row, "first_seen": now}
                )

    async def mark_worker(self, worker_id: str, state: str, now: float) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                worker_registry.update()
                .where(worker_registry.c.worker_id == worker_id)
                .values(state=state)
            )

    async def stale_processing_workers(self, cutoff: float) -> list[str]:
        w = worker_registry
        query = (
            sa.select(task.c.worker_id)
            .distinct()
            .select_from(task.outerjoin(w, w.c.worker_id == task.c.worker_id))
            .where(
                task.c.status == str(S.PROCESSING),
                sa.or_(w.c.worker_id.is_(None), w.c.last_heartbeat < cutoff,
                       w.c.state != "alive"),
            )
        )
        async with self.engine.connect() as conn:
            return [r[0] for r in await conn.execute(query) if r[0] is not None]

    async def list_worker_records(self) -> list[dict[str, Any]]:
        query = sa.select(worker_registry).order_by(worker_registry.c.worker_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [{**r, "types": orjson.loads(r["types"])} for r in rows]


def _plan_outcomes(
    outcomes: Sequence[Outcome], current: dict[str, Task], now: float
) -> list[tuple[Outcome, Task]]:
    """Pair each applicable outcome with the task as it will be; drop outcomes of superseded
    attempts and second answers for the same attempt."""
    planned: list[tuple[Outcome, Task]] = []
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
        "result": None if after.result is None else _dumps(after.result),
        "error": after.error, "finished_at": after.finished_at, "run_at": after.run_at,
        "retry_count": after.retry_count,
    }


def _versions(planned: list[tuple[Outcome, Task]], task_id: str) -> set[int]:
    return {after.version for _, after in planned if after.id == task_id}


def _outcome_logs(o: Outcome, after: Task, now: float) -> list[dict[str, Any]]:
    message = o.message or (o.error or "")[:2000]
    logs = [_log_row(after, S.PROCESSING, o.status, now, message, o.worker_id, o.epoch)]
    if o.retry_at is not None:
        note = f"retry {after.retry_count}/{after.max_retries} due at {o.retry_at:.3f}"
        if not o.spend_retry:
            note = f"attempt lost ({message}); rerun due at {o.retry_at:.3f}"
        logs.append(_log_row(after, o.status, S.PENDING, now, note, o.worker_id, o.epoch))
    return logs


def _key_from_row(row: sa.RowMapping) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"], scope=Scope.parse(row["scope"]), name=row["name"],
        created_at=row["created_at"], secret_hash=row["secret_hash"],
        revoked_at=row["revoked_at"],
    )


def _key(t: Task) -> tuple[str, str] | None:
    return (t.task_type, t.idempotency_key) if t.idempotency_key else None


def _make_engine(url: sa.URL, echo: bool) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the single writer; NORMAL sync is durable across
            # process crashes, which is what standalone mode promises.
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)
