"""Many rows into one table: one multi-row INSERT per chunk, written as the driver's own SQL.

SQLAlchemy runs a list of rows as an executemany, which PostgreSQL's driver executes row by row
(a prepared statement per row), and a multi-VALUES ``insert().values([...])`` costs more CPU to
compile than the rows take to store. Plain text with the driver's placeholders (as
``store.bulk`` writes its UPDATEs) is one statement and one round trip per chunk on every
database. A chunk stays within PostgreSQL's 32,767 bind parameters a statement (SQLite allows
32,766) and, by ``weight``, within ``rows.STATEMENT_BYTES`` of text (MariaDB's packet).

The values go to the driver as they are: callers pass what the columns hold (text, numbers,
None), as ``rows.task_to_row`` and ``rows.log_row`` make them. A column that is None in every
row of a chunk and that a missing value leaves NULL anyway is left out of that chunk's
statement: a new task's row is NULL in ten of its 26 columns, and MariaDB's driver escapes
each parameter in Python, so the NULLs cost a batch create about a third of its driver time.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.store.bulk import marker
from conveyor.store.rows import chunks

MAX_PARAMS = 30_000  # bind parameters a statement: under PostgreSQL's and SQLite's limits
_NONES = itertools.repeat(None)


async def insert_rows(
    conn: AsyncConnection, table: sa.Table, rows: Sequence[Mapping[str, Any]],
    weight: Callable[[Mapping[str, Any]], int] | None = None,
) -> None:
    """Insert ``rows`` (every one with the keys of the first) in the caller's transaction."""
    if not rows:
        return
    names = tuple(rows[0])
    dialect = conn.dialect
    nullable = _nullable(table)
    for chunk in chunks(rows, max(1, MAX_PARAMS // len(names)), weight):
        kept = _kept(names, nullable, chunk)
        params = tuple(itertools.chain.from_iterable(map(_getter(kept), chunk)))
        head = _head(dialect.identifier_preparer, table.name, kept)
        await conn.exec_driver_sql(head + _values(dialect.paramstyle, len(kept), len(chunk)),
                                   params)


@functools.lru_cache(maxsize=64)
def _nullable(table: sa.Table) -> frozenset[str]:
    """The columns a missing value leaves NULL: nullable, without a server default."""
    return frozenset(c.name for c in table.c if c.nullable and c.server_default is None)


def _kept(
    names: tuple[str, ...], nullable: frozenset[str], chunk: Sequence[Mapping[str, Any]]
) -> tuple[str, ...]:
    """``names`` but the nullable ones that are None in every row of ``chunk`` (one C-level
    scan a column); all of them if none would be left."""
    kept = tuple(
        name for name in names
        if name not in nullable
        or any(map(operator.is_not, map(operator.itemgetter(name), chunk), _NONES))
    )
    return kept or names


@functools.lru_cache(maxsize=64)
def _getter(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A row's values in ``names`` order, as one C call a row (a generator over every value
    cost a batch of 1,000 tasks tens of thousands of Python steps)."""
    if len(names) == 1:  # itemgetter of one name gives the bare value, not a 1-tuple
        return lambda row: (row[names[0]],)
    getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = operator.itemgetter(*names)
    return getter


@functools.lru_cache(maxsize=64)
def _head(preparer: sa.sql.compiler.IdentifierPreparer, table: str, names: tuple[str, ...]) -> str:
    """``INSERT INTO "t" ("a", "b") VALUES ``: quoting every name again cost a one-task
    create more than its statement's values."""
    quote = preparer.quote
    return f"INSERT INTO {quote(table)} ({', '.join(quote(n) for n in names)}) VALUES "


@functools.lru_cache(maxsize=64)
def _values(paramstyle: str, width: int, count: int) -> str:
    """``(?, ?), (?, ?), ...`` for ``count`` rows of ``width`` values: every full chunk of a
    table has the same text, made once."""
    mark = marker(paramstyle)
    return ", ".join(
        "(" + ", ".join(mark(i * width + j) for j in range(width)) + ")" for i in range(count)
    )
