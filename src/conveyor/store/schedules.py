"""Schedules and their fire history: the admins' definitions and the leader's firing.

``fire`` is the one write that matters for §8.11 (once per fire). In one transaction it moves
each schedule on, conditional on the version it was read with (a schedule changed meanwhile
writes nothing, and the leader plans it again), records each fire unless its row exists (the
primary key is the fire), and creates each fired task through the same insert as the API, whose
idempotency key ``schedule:<name>:<fire time>`` holds even if the fire row were gone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.audit import AuditEntry, fires_view, schedule_view
from conveyor.errors import Conflict
from conveyor.events import Event, EventBus, EventKind
from conveyor.models import Task
from conveyor.schedules.model import Fire, FireOutcome, Schedule
from conveyor.store import audit as recording
from conveyor.store.bulk import schedule_moves
from conveyor.store.database import Database
from conveyor.store.protocol import FireResult, FireWrite
from conveyor.store.rows import chunks
from conveyor.store.schedule_rows import (
    FireKey,
    definition_row,
    fire_from_row,
    fire_key,
    fire_row,
    new_row,
    schedule_from_row,
)
from conveyor.store.schema import schedule_fires, schedules
from conveyor.store.tasks import insert_in

_TRIES = 3
_S, _F = schedules.c, schedule_fires.c


class SqlSchedules:
    def __init__(self, db: Database, events: EventBus) -> None:
        self._db = db
        self._events = events

    async def put(self, schedule: Schedule, *, audit: AuditEntry | None = None) -> None:
        await recording.upsert_recorded(
            self._db, schedules, {"tenant": schedule.tenant, "name": schedule.name},
            {**definition_row(schedule), "version": _S.version + 1}, audit, schedule.updated_at,
            _view, schedule_view(schedule), schedule.tenant, created=new_row(schedule),
        )

    async def get(self, tenant: str, name: str) -> Schedule | None:
        row = await self._db.first(sa.select(schedules).where(_named(tenant, name)))
        return None if row is None else schedule_from_row(row)

    async def list_schedules(self, tenant: str | None) -> list[Schedule]:
        query = sa.select(schedules).order_by(_S.tenant, _S.name)
        if tenant is not None:
            query = query.where(_S.tenant == tenant)
        return [schedule_from_row(r) for r in await self._db.rows(query)]

    async def delete(
        self, tenant: str, name: str, *, audit: AuditEntry | None = None
    ) -> bool:
        async with self._db.begin() as conn:
            found = await recording.locked_before(conn, schedules, [_named(tenant, name)], audit)
            await conn.execute(schedule_fires.delete().where(
                sa.and_(_F.tenant == tenant, _F.name == name)))
            result = await conn.execute(schedules.delete().where(_named(tenant, name)))
            if result.rowcount:
                await recording.record(conn, audit, time.time(), before=_view(found),
                                       after=None, tenant=tenant)
        return bool(result.rowcount)

    async def set_paused(
        self, tenant: str, name: str, paused: bool, next_fire_at: float | None, now: float,
        *, audit: AuditEntry | None = None,
    ) -> Schedule | None:
        async with self._db.begin() as conn:
            found = await recording.locked_before(conn, schedules, [_named(tenant, name)], audit)
            result = await conn.execute(schedules.update().where(_named(tenant, name)).values(
                paused=paused, next_fire_at=next_fire_at, updated_at=now,
                version=_S.version + 1))
            if result.rowcount and found is not None:
                await recording.record(conn, audit, now, before={"paused": bool(found["paused"])},
                                       after={"paused": paused}, tenant=tenant)
        return await self.get(tenant, name)

    async def due(self, now: float, limit: int) -> list[Schedule]:
        query = (sa.select(schedules).where(_S.next_fire_at <= now)
                 .order_by(_S.next_fire_at).limit(limit))
        return [schedule_from_row(r) for r in await self._db.rows(query)]

    async def with_buffered(self, limit: int) -> list[Schedule]:
        query = sa.select(schedules).where(_S.buffered > 0).limit(limit)
        return [schedule_from_row(r) for r in await self._db.rows(query)]

    async def next_due(self) -> float | None:
        async with self._db.connect() as conn:
            found = (await conn.execute(sa.select(sa.func.min(_S.next_fire_at)))).scalar()
        return None if found is None else float(found)

    async def buffered_fires(self, schedule: Schedule, limit: int) -> list[Fire]:
        query = (sa.select(schedule_fires)
                 .where(sa.and_(_F.tenant == schedule.tenant, _F.name == schedule.name,
                                _F.outcome == str(FireOutcome.BUFFERED)))
                 .order_by(_F.fire_at).limit(limit))
        return [fire_from_row(r) for r in await self._db.rows(query)]

    async def fires(
        self, tenant: str, name: str, limit: int, before: float | None = None
    ) -> list[Fire]:
        query = (sa.select(schedule_fires)
                 .where(sa.and_(_F.tenant == tenant, _F.name == name))
                 .order_by(_F.fire_at.desc()).limit(limit))
        if before is not None:
            query = query.where(_F.fire_at < before)
        return [fire_from_row(r) for r in await self._db.rows(query)]

    async def fire(
        self, writes: Sequence[FireWrite], now: float, *, audit: AuditEntry | None = None
    ) -> FireResult:
        per_row, lost = False, 0
        while True:
            try:
                async with self._db.begin() as conn:
                    result = await _fire_in(conn, writes, now, per_row)
                    await recording.record(
                        conn, audit, now, after=fires_view(result.recorded),
                        tenant=writes[0].schedule.tenant if writes else None)
                break
            except _Stale:
                per_row = True  # rolled back; raised only by the batched path, so once
            except IntegrityError as exc:
                # Another leader recorded one of these fires between our read and our write:
                # the next read finds its rows, and leaves them be.
                lost += 1
                if lost == _TRIES:
                    raise Conflict(f"fires not recorded after {lost} tries: {exc.orig}") from exc
        self._events.emit([Event(EventKind.CREATED, t, now) for t in result.created])
        return result


class _Stale(Exception):
    """A batched move found some schedule changed: redone row by row to learn which."""


async def _fire_in(
    conn: AsyncConnection, writes: Sequence[FireWrite], now: float, per_row: bool
) -> FireResult:
    existing = await _existing_fires(conn, [f for w in writes for f, _ in w.fires])
    kept_of = [[(f, t, existing.get(fire_key(f)) == FireOutcome.BUFFERED)
                for f, t in w.fires if _kept(f, existing.get(fire_key(f)))] for w in writes]
    moves = [(w, _move(w, kept)) for w, kept in zip(writes, kept_of, strict=True) if w.advance]
    applied = await _advance(conn, [m for _, m in moves], per_row)
    stale = [w.schedule for (w, _), ok in zip(moves, applied, strict=True) if not ok]
    gone = {id(w) for (w, _), ok in zip(moves, applied, strict=True) if not ok}
    fresh = [k for w, kept in zip(writes, kept_of, strict=True) if id(w) not in gone
             for k in kept]
    tasks = [t for _, t, _ in fresh if t is not None]
    created, stands_for = await insert_in(conn, tasks, now)
    task_ids = {t.id: c.task.id for t, c in zip(tasks, stands_for, strict=True)}
    recorded = [_with_task(f, task_ids.get(t.id) if t else None) for f, t, _ in fresh]
    new_rows = [fire_row(f) for f, (_, _, release) in zip(recorded, fresh, strict=True)
                if not release]
    for chunk in chunks(new_rows):
        await conn.execute(schedule_fires.insert(), list(chunk))
    for f, (_, _, release) in zip(recorded, fresh, strict=True):
        if release:
            await conn.execute(schedule_fires.update().where(sa.and_(
                _F.tenant == f.tenant, _F.name == f.name, _F.fire_at == f.fire_at,
                _F.kind == str(f.kind), _F.outcome == str(FireOutcome.BUFFERED),
            )).values(outcome=str(f.outcome), task_id=f.task_id, recorded_at=f.recorded_at,
                      epoch=f.epoch, note=f.note))
    return FireResult(created, recorded, stale)


def _kept(fire: Fire, recorded: str | None) -> bool:
    return recorded is None or (
        recorded == FireOutcome.BUFFERED and fire.outcome == FireOutcome.FIRED)


def _move(write: FireWrite, kept: Sequence[tuple[Fire, Task | None, bool]]) -> dict[str, Any]:
    """The parameters of ``_MOVE`` for one schedule."""
    s = write.schedule
    fired = [(f, t) for f, t, _ in kept if f.outcome == FireOutcome.FIRED]
    last, task = max(fired, key=lambda pair: pair[0].fire_at) if fired else (None, None)
    return {
        "b_tenant": s.tenant, "b_name": s.name, "b_version": s.version,
        "b_next": write.next_fire_at,
        "b_buffered": sum(1 for f, _, _ in kept if f.outcome == FireOutcome.BUFFERED)
        - sum(1 for _, _, release in kept if release),
        "b_missed": sum(1 for f, _, _ in kept if f.outcome == FireOutcome.MISSED),
        "b_last": None if last is None else last.fire_at,
        "b_task": None if task is None else task.id,
    }


# Moves a schedule on if it still has the version it was read with; one statement for a batch.
_MOVE = schedules.update().where(sa.and_(
    _S.tenant == sa.bindparam("b_tenant"), _S.name == sa.bindparam("b_name"),
    _S.version == sa.bindparam("b_version"),
)).values(
    next_fire_at=sa.bindparam("b_next", type_=sa.Double),
    version=_S.version + 1,
    buffered=_S.buffered + sa.bindparam("b_buffered", type_=sa.Integer),
    missed=_S.missed + sa.bindparam("b_missed", type_=sa.Integer),
    last_fire_at=sa.func.coalesce(sa.bindparam("b_last", type_=sa.Double), _S.last_fire_at),
    last_task_id=sa.func.coalesce(sa.bindparam("b_task", type_=sa.String), _S.last_task_id),
)


async def _advance(conn: AsyncConnection, moves: Sequence[dict[str, Any]],
                   per_row: bool) -> list[bool]:
    """Which moves applied. A driver that counts an executemany's rows gets one round trip
    for the batch; if the count is short, the whole transaction is redone row by row."""
    if not moves:
        return []
    if not per_row and conn.dialect.name in ("mysql", "mariadb", "postgresql"):
        # Their drivers run an executemany row by row (or count no rows): a derived table.
        moved = 0
        for chunk in chunks(moves, 200):
            sql, params = schedule_moves(conn.dialect.name, conn.dialect.paramstyle, chunk)
            moved += (await conn.exec_driver_sql(sql, params)).rowcount
        if moved != len(moves):
            raise _Stale()
        return [True] * len(moves)
    if not per_row and conn.dialect.supports_sane_multi_rowcount:
        result = await conn.execute(_MOVE, list(moves))
        if result.rowcount != len(moves):
            raise _Stale()
        return [True] * len(moves)
    return [bool((await conn.execute(_MOVE, m)).rowcount) for m in moves]


async def _existing_fires(conn: AsyncConnection, fires: Sequence[Fire]) -> dict[FireKey, str]:
    found: dict[FireKey, str] = {}
    keys = sorted({fire_key(f) for f in fires})
    for chunk in chunks(keys):
        # An IN list per key column: a primary-key search on every database (a row-value IN
        # is a table scan on SQLite). It may select more than asked; only asked keys count.
        wanted = set(chunk)
        columns = (_F.tenant, _F.name, _F.fire_at, _F.kind)
        query = sa.select(*columns, _F.outcome).where(sa.and_(*(
            column.in_(sorted({key[i] for key in wanted})) for i, column in enumerate(columns))))
        for row in (await conn.execute(query)).all():
            key = (row.tenant, row.name, row.fire_at, row.kind)
            if key in wanted:
                found[key] = row.outcome
    return found


def _with_task(fire: Fire, task_id: str | None) -> Fire:
    if task_id is None:
        return fire
    return Fire(fire.tenant, fire.name, fire.fire_at, fire.kind, fire.outcome, task_id,
                fire.recorded_at, fire.epoch, fire.note)


def _view(row: sa.RowMapping | None) -> dict[str, Any] | None:
    return schedule_view(None if row is None else schedule_from_row(row))


def _named(tenant: str, name: str) -> sa.ColumnElement[bool]:
    return sa.and_(_S.tenant == tenant, _S.name == name)
