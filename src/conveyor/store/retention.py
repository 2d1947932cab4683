"""The purge queries of retention: find expired rows through an index, delete them in short
transactions, with their child rows, after an optional archive has kept a copy.

Generic over ``PurgeTarget``s (a table, its time column, how long it is kept, an optional
status it must have, child tables whose rows go with it), so any table with a time column is
purged the same way: the task table once per final status, ``task_logs`` by ``at``, and the
tables other features add (an audit log, workflows, schedule fire histories). A table whose
primary key has several columns (``schedule_fires``) names them all as the target's ``key``:
its keys are tuples, matched as an OR of per-row equalities, which every database answers from
the primary key index (a row-value ``IN`` is a table scan on SQLite).

Why two steps: the ids come from one indexed ``SELECT ... ORDER BY time LIMIT n`` outside any
transaction, so finding work takes no lock at all; the delete of those ids is then one short
transaction per batch, never one huge ``DELETE`` that would hold locks (and grow the undo log)
for as long as the whole backlog takes. That transaction is READ COMMITTED on MariaDB too: no
gap locks, and a statement that reads rows it does not delete neither locks nor waits for them,
so creates inserting beside the purge are never blocked by it (under REPEATABLE READ a delete
whose plan went wrong locked the whole table and deadlocked with them). Inside it the rows
are locked by primary key and the expiry condition is checked again on them, so a task
reopened (manual retry) since it was found is kept. Children go before their parent, so a
schema where a child refers to its parent by a foreign key is purged the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.store.database import Database
from conveyor.store.rows import chunks

Row = Mapping[str, Any]

#: Keys per ``IN (...)`` list. MariaDB estimates a list of ``eq_range_index_dive_limit`` (200)
#: keys or more from index statistics, which a bulk load or a purge leaves stale (a fresh table
#: of 30,000 logs said 2 distinct tasks), and then scans the whole table; a shorter list is
#: looked up key by key and keeps to the index.
PURGE_CHUNK = 100


@dataclass(frozen=True, slots=True)
class Child:
    """Rows of ``table`` whose ``column`` holds a purged parent's key are deleted with it."""

    table: sa.Table
    column: str


@dataclass(frozen=True, slots=True)
class PurgeTarget:
    """Rows of ``table`` whose ``time_column`` is more than ``keep`` seconds old (and whose
    ``status_column`` equals ``status``, when given); ``keep`` 0 keeps them forever.

    A status is one equality, so the query is one range of a (status, time) index; a table
    purged by several statuses is several targets. ``key`` is the primary key: one column
    (keys are its values) or several (keys are tuples of theirs; such a target has no
    children, which would name a single parent column)."""

    table: sa.Table
    time_column: str
    keep: float
    key: str | tuple[str, ...] = "id"
    status_column: str | None = None
    status: str | None = None
    children: tuple[Child, ...] = ()
    # Rows this is true of at ``now`` are kept however old (a workflow with a live node):
    # checked by the query that finds rows and again, in SQL, on the rows locked for a delete.
    kept: Callable[[float], sa.ColumnElement[bool]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) and self.children:
            raise ValueError(f"{self.table.name}: a composite key cannot have children")

    @property
    def enabled(self) -> bool:
        return self.keep > 0

    @property
    def key_columns(self) -> list[sa.Column[Any]]:
        names = (self.key,) if isinstance(self.key, str) else self.key
        return [self.table.c[n] for n in names]

    def key_of(self, row: Row | sa.RowMapping) -> Any:
        """A row's key: the value of a one-column key, a tuple of a composite one."""
        if isinstance(self.key, str):
            return row[self.key]
        return tuple(row[n] for n in self.key)

    def with_keys(self, keys: Sequence[Any]) -> sa.ColumnElement[bool]:
        """The rows of ``keys`` (at most ``PURGE_CHUNK``)."""
        columns = self.key_columns
        if isinstance(self.key, str):
            return columns[0].in_(keys)
        return sa.or_(*(sa.and_(*(c == v for c, v in zip(columns, k, strict=True)))
                        for k in keys))

    def expired(self, now: float) -> sa.ColumnElement[bool]:
        """The condition a row must meet to go; NULL times (not finished) never match."""
        cond: sa.ColumnElement[bool] = self.table.c[self.time_column] < now - self.keep
        if self.status_column is not None and self.status is not None:
            cond = sa.and_(self.table.c[self.status_column] == self.status, cond)
        if self.kept is not None:
            cond = sa.and_(cond, sa.not_(self.kept(now)))
        return cond

    @property
    def condition_columns(self) -> list[sa.Column[Any]]:
        named = [self.time_column, self.status_column] if self.status else [self.time_column]
        return [self.table.c[n] for n in named if n is not None]

    def matches(self, row: Row, now: float) -> bool:
        """``expired`` checked on a row already read."""
        at = row[self.time_column]
        if at is None or at >= now - self.keep:
            return False
        return self.status_column is None or self.status is None or (
            row[self.status_column] == self.status)

    @property
    def label(self) -> str:
        return self.table.name if self.status is None else f"{self.table.name}/{self.status}"


class RowArchive(Protocol):
    """Keeps a durable copy of rows about to be deleted: ``keep`` returns only once they are
    on disk, and raises ``ArchiveFailed`` if they are not, which aborts the delete."""

    async def keep(self, table: str, rows: Sequence[Row], now: float) -> None: ...


class SqlPurges:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def expired(self, target: PurgeTarget, now: float, limit: int) -> list[Any]:
        """Keys of up to ``limit`` expired rows, oldest first, read through the target's
        (status, time) or (time) index without a transaction."""
        t = target.table
        query = (
            sa.select(*target.key_columns).where(target.expired(now))
            .order_by(t.c[target.time_column]).limit(limit)
        )
        return [target.key_of(row) for row in await self._db.rows(query)]

    async def purge(
        self, target: PurgeTarget, keys: Sequence[Any], now: float,
        archive: RowArchive | None = None,
    ) -> dict[str, int]:
        """Delete the rows of ``keys`` that are still expired, and their children, in one
        transaction; with an ``archive``, every row deleted is kept there first (a crash
        between the archive's fsync and the commit archives those rows again next time).
        Returns rows deleted per table."""
        t = target.table
        removed: dict[str, int] = {}
        async with self._db.begin(read_committed=True) as conn:
            rows = [r for r in await _locked(conn, target, keys, full=archive is not None)
                    if target.matches(r, now)]
            rows = await _not_kept(conn, target, rows, now)
            if not rows:
                return removed
            live = [target.key_of(r) for r in rows]
            if archive is not None:
                for child in target.children:
                    await archive.keep(
                        child.table.name, await _children(conn, child, live), now)
                await archive.keep(t.name, rows, now)
            for child in target.children:  # a child table nothing was deleted from is left out
                if gone := await _delete(conn, child.table, child.table.c[child.column].in_, live):
                    removed[child.table.name] = gone
            removed[t.name] = await _delete(conn, t, target.with_keys, live)
        return removed


async def _locked(
    conn: AsyncConnection, target: PurgeTarget, keys: Sequence[Any], *, full: bool
) -> list[Row]:
    """The rows of ``keys``, locked until commit, read by primary key alone.

    By key alone because a planner offered the expiry condition too may scan the (status,
    time) index instead, through every expired row, for each batch (PostgreSQL does, without
    fresh statistics): the condition is checked on the rows read (``PurgeTarget.matches``).
    MariaDB and PostgreSQL lock the rows with ``FOR UPDATE``; SQLite has no row locks, so a
    write to those rows comes first and takes its database-wide write lock."""
    t, key = target.table, target.key_columns
    columns = list(t.c) if full else [*key, *target.condition_columns]
    found: list[Row] = []
    for part in chunks(keys, PURGE_CHUNK):
        if conn.dialect.name == "sqlite":
            await conn.execute(
                t.update().where(target.with_keys(part)).values({key[0].name: key[0]}))
        query = (sa.select(*columns).where(target.with_keys(part)).order_by(*key)
                 .with_for_update())
        found.extend(_plain(r) for r in (await conn.execute(query)).mappings())
    return found


async def _not_kept(
    conn: AsyncConnection, target: PurgeTarget, rows: list[Row], now: float
) -> list[Row]:
    """``rows`` less those the target's ``kept`` condition holds for now, read again by key
    in the delete's transaction."""
    if target.kept is None or not rows:
        return rows
    gone: set[Any] = set()
    for part in chunks([target.key_of(r) for r in rows], PURGE_CHUNK):
        query = sa.select(*target.key_columns).where(target.with_keys(part),
                                                      sa.not_(target.kept(now)))
        gone |= {target.key_of(r) for r in (await conn.execute(query)).mappings()}
    return [r for r in rows if target.key_of(r) in gone]


async def _children(conn: AsyncConnection, child: Child, keys: Sequence[Any]) -> list[Row]:
    column = child.table.c[child.column]
    found: list[Row] = []
    for part in chunks(keys, PURGE_CHUNK):
        query = sa.select(child.table).where(column.in_(part)).order_by(*child.table.primary_key)
        found.extend(_plain(r) for r in (await conn.execute(query)).mappings())
    return found


async def _delete(
    conn: AsyncConnection, table: sa.Table,
    matching: Callable[[Sequence[Any]], sa.ColumnElement[bool]], keys: Sequence[Any],
) -> int:
    count = 0
    for part in chunks(keys, PURGE_CHUNK):
        result = await conn.execute(table.delete().where(matching(part)))
        count += result.rowcount
    return count


def _plain(row: sa.RowMapping) -> Row:
    """A row as a dict keyed by plain ``str`` (SQLAlchemy's keys are a ``str`` subclass that
    JSON encoders refuse)."""
    return {str(k): v for k, v in row.items()}
