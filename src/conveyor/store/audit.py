"""The audit log (``audit_log``): rows written inside the transaction of the action they
record, and the filtered, tenant-scoped, newest-first list.

``record(conn, entry, at)`` is the one call a store method makes, on the connection of its own
transaction, once its change has applied: a refused or rolled-back action leaves no row, and an
audit row the database refuses rolls the action back. ``entry`` None records nothing, so a
method serves audited callers (the API, the CLI) and unaudited ones (the scheduler) alike.
``SqlAudit.write`` is the same row in a transaction of its own, for actions that change no SQL
row (pause / resume, a cancel signal to a running task).
"""

from __future__ import annotations

import dataclasses
import operator
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.audit import Actor, AuditEntry, AuditPage, AuditQuery, AuditRecord
from conveyor.store.database import Database
from conveyor.store.rows import dumps, loads
from conveyor.store.schema import audit_log

UNSET: Any = object()  # ``record``'s before / after: keep what the entry holds


async def record(
    conn: AsyncConnection, entry: AuditEntry | None, at: float,
    before: Any = UNSET, after: Any = UNSET, *, tenant: str | None = None,
) -> None:
    """Write ``entry`` (with ``before`` / ``after`` as seen in this transaction, when given)
    on ``conn``; nothing when ``entry`` is None. ``tenant`` files the row under the target's
    tenant rather than the actor's: a superadmin's action shows in the audit of the tenant it
    touched."""
    if entry is None:
        return
    if tenant is not None and tenant != entry.actor.tenant:
        entry = dataclasses.replace(entry, actor=dataclasses.replace(entry.actor, tenant=tenant))
    if before is not UNSET or after is not UNSET:
        entry = entry.change(
            entry.before if before is UNSET else before, entry.after if after is UNSET else after
        )
    await conn.execute(audit_log.insert().values(_row(entry, at)))


View = Callable[[sa.RowMapping | None], Any]  # a table's row (None: none) as before / after


async def upsert_recorded(
    db: Database, table: sa.Table, key: dict[str, Any], row: dict[str, Any],
    entry: AuditEntry | None, at: float, view: View, after: Any, tenant: str | None = None,
    *, created: dict[str, Any] | None = None,
) -> None:
    """``db.upsert`` of the row whose primary key is ``key`` (``created``: what only a new row
    gets), recording ``entry`` (filed under ``tenant``) in the transaction that wrote, with
    ``view`` of the row before (read ``FOR UPDATE`` there) and ``after``."""

    async def recorded(conn: AsyncConnection, before: sa.RowMapping | None) -> None:
        await record(conn, entry, at, before=view(before), after=after, tenant=tenant)

    await db.upsert(table, key, row, created, then=None if entry is None else recorded)


async def delete_recorded(
    db: Database, table: sa.Table, key: dict[str, Any], entry: AuditEntry | None, view: View,
    tenant: str | None = None,
) -> bool:
    """Delete the row whose primary key is ``key``, recording ``entry`` with ``view`` of the
    row deleted in the same transaction; False (and no record) when there was no row."""
    match = [table.c[name] == value for name, value in key.items()]
    async with db.begin() as conn:
        found = await locked_before(conn, table, match, entry)
        result = await conn.execute(table.delete().where(*match))
        if result.rowcount and found is not None:
            await record(conn, entry, time.time(), before=view(found), after=None,
                         tenant=tenant)
    return bool(result.rowcount)


async def locked_before(
    conn: AsyncConnection, table: sa.Table, match: list[sa.ColumnElement[bool]],
    entry: AuditEntry | None,
) -> sa.RowMapping | None:
    """The row a change is about to touch, read ``FOR UPDATE`` so no one changes it before the
    change and its record commit; not read (None) when nothing is recorded."""
    if entry is None:
        return None
    lock = sa.select(table).where(*match).with_for_update()
    return (await conn.execute(lock)).mappings().first()


def _row(entry: AuditEntry, at: float) -> dict[str, Any]:
    who = entry.actor
    return {
        "at": at, "tenant": who.tenant, "key_id": who.key_id,
        "client": None if who.client is None else who.client[:64],
        "action": entry.action, "target_kind": entry.target_kind, "target_id": entry.target_id,
        "before_json": None if entry.before is None else dumps(entry.before),
        "after_json": None if entry.after is None else dumps(entry.after),
        "detail": None if entry.detail is None else entry.detail[:255],
    }


class SqlAudit:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def write(self, entry: AuditEntry, at: float, *, tenant: str | None = None) -> None:
        async with self._db.begin() as conn:
            await record(conn, entry, at, tenant=tenant)

    async def list_entries(self, query: AuditQuery, tenant: str | None) -> AuditPage:
        """Newest first; ``tenant`` None spans tenants (a superadmin), else only its rows."""
        c = audit_log.c
        given = (
            (c.tenant, operator.eq, tenant), (c.action, operator.eq, query.action),
            (c.target_id, operator.eq, query.target_id), (c.key_id, operator.eq, query.key_id),
            (c.at, operator.ge, query.since), (c.at, operator.le, query.until),
            (c.id, operator.lt, query.cursor),
        )
        conditions = [op(column, value) for column, op, value in given if value is not None]
        select = sa.select(audit_log).where(*conditions).order_by(c.id.desc())
        rows = await self._db.rows(select.limit(query.limit + 1))
        records = [_record(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return AuditPage(records, records[-1].id if more else None)


def _record(row: sa.RowMapping) -> AuditRecord:
    actor = Actor(row["key_id"], row["tenant"], row["client"])
    entry = AuditEntry(
        actor, row["action"], row["target_id"], loads(row["before_json"]),
        loads(row["after_json"]), row["detail"],
    )
    return AuditRecord(row["id"], row["at"], entry)
