"""Creating tasks and reading them back: the API's side of the task table.

Creation lives here rather than with the moves because it is the only write that must cope
with idempotency keys (a read of existing keys, then a race on the unique constraint); every
later change is a conditional update and lives in ``moves``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.errors import Conflict, ValidationError
from conveyor.events import Event, EventBus, EventKind
from conveyor.models import Task, TaskLog, TaskStatus
from conveyor.store.database import Database
from conveyor.store.deps import insert_edges, settle
from conveyor.store.inserts import insert_rows
from conveyor.store.protocol import METADATA_WINDOW, Created, ListRequest, Page, TaskFilter
from conveyor.store.rows import (
    SUMMARY_COLUMNS,
    by_ids,
    chunks,
    in_tenant,
    key_hash,
    log_row,
    select_tasks,
    summary_from_row,
    task_to_row,
)
from conveyor.store.schema import task, task_logs

Key = tuple[str, str, str] | None  # (tenant, task type, idempotency key)
_INSERT_TRIES = 3


class SqlTasks:
    def __init__(self, db: Database, events: EventBus) -> None:
        self._db = db
        self._events = events

    async def insert(self, tasks: Sequence[Task]) -> list[Created]:
        """One transaction: all of ``tasks`` or, on an error, none of them. Within the batch
        the first task with a key wins, as it would in a sequence of requests."""
        if not tasks:
            return []
        now = max(t.created_at for t in tasks)
        for attempt in range(1, _INSERT_TRIES + 1):
            try:
                async with self._db.begin() as conn:
                    fresh, result = await insert_in(conn, tasks, now)
                break
            except IntegrityError as exc:
                # A concurrent submit took one of the keys between our read and our write: the
                # next read finds it. Still failing after a few reads means the rows themselves
                # collide, and this batch is refused whole.
                if attempt == _INSERT_TRIES:
                    raise Conflict(f"tasks not created after {attempt} tries: {exc.orig}") from exc
        self._events.emit([Event(EventKind.CREATED, t, now) for t in fresh])
        return result

    async def get(self, task_id: str, tenant: str | None = None) -> Task | None:
        found = await self.get_many([task_id], tenant)
        return found[0] if found else None

    async def get_many(self, task_ids: Sequence[str], tenant: str | None = None) -> list[Task]:
        out: list[Task] = []
        async with self._db.connect() as conn:
            for chunk in chunks(list(task_ids)):
                out.extend(await select_tasks(conn, by_ids(chunk, tenant)))
        return out

    async def list_tasks(self, ask: ListRequest) -> Page:
        where = ask.where
        sizes = [sa.func.length(task.c[name]).label(f"{name}_bytes") for name in ask.include]
        query = sa.select(*SUMMARY_COLUMNS, *sizes).order_by(task.c.id.desc()).limit(ask.limit + 1)
        window: sa.Subquery | None = None
        if where.metadata is None:
            query = narrowed(query, where, ask.cursor)
        else:
            window = narrowed(sa.select(task.c.id), where, ask.cursor).order_by(
                task.c.id.desc()).limit(METADATA_WINDOW).subquery()
            pair = orjson.dumps(where.metadata[0]) + b":" + orjson.dumps(where.metadata[1])
            query = query.join_from(task, window, task.c.id == window.c.id).where(
                task.c.metadata.contains(pair.decode(), autoescape=True))
        async with self._db.connect() as conn:
            rows = list((await conn.execute(query)).mappings())
            more = len(rows) > ask.limit
            taken = within_budget(rows[: ask.limit], ask.include, ask.budget)
            more = more or len(taken) < min(len(rows), ask.limit)
            big = await _big_fields(conn, [r["id"] for r in taken], ask.include)
            tasks = [summary_from_row(r, big.get(r["id"], {})) for r in taken]
            cursor = tasks[-1].id if more and tasks else None
            if window is not None and not more:  # the window read whole: go on past it
                scanned, last = (await conn.execute(
                    sa.select(sa.func.count(), sa.func.min(window.c.id)))).one()
                cursor = last if scanned >= METADATA_WINDOW else None
        return Page(tasks, cursor, ask.include)

    async def logs(self, task_id: str, tenant: str | None = None) -> list[TaskLog]:
        query = sa.select(task_logs).where(task_logs.c.task_id == task_id).order_by(task_logs.c.id)
        if tenant is not None:  # the log of a task only when the task is the tenant's
            query = query.where(sa.exists(in_tenant(
                sa.select(task.c.id).where(task.c.id == task_id), tenant
            )))
        return [
            TaskLog(
                task_id=r["task_id"], attempt=r["attempt"],
                from_status=None if r["from_status"] is None else TaskStatus(r["from_status"]),
                to_status=TaskStatus(r["to_status"]), at=r["at"], message=r["message"],
                worker_id=r["worker_id"], epoch=r["epoch"], id=r["id"],
            )
            for r in await self._db.rows(query)
        ]


def within_budget(
    rows: Sequence[sa.RowMapping], include: frozenset[str], budget: int
) -> Sequence[sa.RowMapping]:
    """The leading rows whose included big fields (by their ``<name>_bytes`` columns) add up
    to at most ``budget``; the first row always, so an oversized one still comes alone."""
    total = 0
    for count, row in enumerate(rows):
        total += sum(row[f"{name}_bytes"] or 0 for name in include)
        if count and total > budget:
            return rows[:count]
    return rows


def narrowed(query: sa.Select[Any], where: TaskFilter, cursor: str | None) -> sa.Select[Any]:
    """``query`` restricted by every indexed part of ``where`` and the cursor."""
    query = in_tenant(query, where.tenant)
    if where.status is not None:
        query = query.where(task.c.status == str(where.status))
    if where.task_type is not None:
        query = query.where(task.c.task_type == where.task_type)
    if where.idempotency_key is not None:
        if where.task_type is None:
            raise ValidationError("an idempotency key is searched for with its task type")
        query = query.where(
            task.c.idempotency_hash == key_hash(where.task_type, where.idempotency_key))
    if where.created_from is not None:
        query = query.where(task.c.created_at >= where.created_from)
    if where.created_to is not None:
        query = query.where(task.c.created_at < where.created_to)
    if cursor is not None:
        query = query.where(task.c.id < cursor)
    return query


async def _big_fields(
    conn: AsyncConnection, ids: Sequence[str], include: frozenset[str]
) -> dict[str, dict[str, str | None]]:
    """The included big columns' stored text for ``ids``, read only when asked for."""
    if not include or not ids:
        return {}
    columns = [task.c[name] for name in sorted(include)]
    found: dict[str, dict[str, str | None]] = {}
    for chunk in chunks(list(ids)):
        query = sa.select(task.c.id, *columns).where(task.c.id.in_(chunk))
        for row in (await conn.execute(query)).mappings():
            found[row["id"]] = {name: row[name] for name in include}
    return found


async def insert_in(
    conn: AsyncConnection, tasks: Sequence[Task], now: float
) -> tuple[list[Task], list[Created]]:
    """Insert ``tasks`` in the caller's transaction: the ones created, and for each task the
    row that stands for it (itself, or the task that already held its idempotency key). The
    schedules' firing shares it, so a fire's task and its history row commit together."""
    existing = await _existing_by_key(conn, tasks)
    fresh = _first_per_key([t for t in tasks if _key(t) not in existing])
    await _insert_rows(conn, fresh, now)
    fresh = await _with_parents(conn, fresh, now)
    created = {t.id: t for t in fresh}
    by_key = {_key(t): t for t in fresh if _key(t)}
    result = [
        Created(created[t.id], True) if t.id in created
        else Created(existing.get(_key(t)) or by_key[_key(t)], False)
        for t in tasks
    ]
    return fresh, result


async def _insert_rows(conn: AsyncConnection, fresh: Sequence[Task], now: float) -> None:
    await insert_rows(conn, task, [task_to_row(t, now) for t in fresh], _weight)
    await insert_rows(conn, task_logs, [log_row(t, None, t.status, now, "created") for t in fresh])


async def _with_parents(conn: AsyncConnection, fresh: list[Task], now: float) -> list[Task]:
    """Write the edges of the WAITING tasks among ``fresh``, and settle them at once: parents
    that ended before this commit release (or cancel) their child here, since no later final
    move of theirs will (docs/design.md §10). A parent of the same batch is new, so not
    final: a child whose parents are all in the batch (every node of a workflow) waits."""
    children = [t for t in fresh if t.parents]
    if not children:
        return fresh
    await insert_edges(conn, children)
    batch = {t.id for t in fresh}
    older = [t.id for t in children if not batch.issuperset(t.parents)]
    if not older:
        return fresh
    settled = await settle(conn, older, now)
    moved = {t.id: t for t in settled.released + settled.cancelled}
    return [moved.get(t.id, t) for t in fresh]


async def _existing_by_key(conn: AsyncConnection, tasks: Sequence[Task]) -> dict[Key, Task]:
    keyed = [t for t in tasks if t.idempotency_key]
    if not keyed:
        return {}
    found: dict[Key, Task] = {}
    for chunk in chunks(keyed):
        # IN lists on the unique constraint's columns: an index search on every database,
        # and far cheaper to build than an OR of triples (which cost more CPU than the query
        # for a batch of fires). The lists may select more than the triples asked for; the
        # check below keeps only those.
        wanted = {
            (t.tenant, t.task_type, key_hash(t.task_type, t.idempotency_key)) for t in chunk
        }
        where = sa.and_(task.c.tenant.in_(sorted({w[0] for w in wanted})),
                        task.c.task_type.in_(sorted({w[1] for w in wanted})),
                        task.c.idempotency_hash.in_(sorted({w[2] for w in wanted})))
        for existing in await select_tasks(conn, sa.select(task).where(where)):
            found_key = (existing.tenant, existing.task_type,
                         key_hash(existing.task_type, existing.idempotency_key))
            if found_key in wanted:
                found[_key(existing)] = existing
    return found


def _first_per_key(tasks: Sequence[Task]) -> list[Task]:
    seen: set[Key] = set()
    first = []
    for t in tasks:
        key = _key(t)
        if key is None or key not in seen:
            seen.add(key)
            first.append(t)
    return first


def _weight(row: Mapping[str, Any]) -> int:
    """Roughly the bytes a task's row adds to an INSERT statement."""
    return len(row["payload"]) + len(row["metadata"]) + 512


def _key(t: Task) -> Key:
    return (t.tenant, t.task_type, t.idempotency_key) if t.idempotency_key else None
