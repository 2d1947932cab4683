"""The worker's two hot reads and writes of ``task`` as the driver's own SQL, made once per size.

A worker starts and finishes tasks in batches of tens, several times a second; through
SQLAlchemy Core each statement paid its cache key, the expansion of its ``IN`` list and a
``RowMapping`` per row, more CPU than the database spends on it. These statements are plain
text with the driver's placeholders (as ``store.bulk`` writes its UPDATEs), kept by size, and
their rows come back as tuples in ``rows.READ`` order.

``IN`` lists are padded to a power of two with their last id (a repeated id matches the same
row once): a few texts serve every batch size, so PostgreSQL's prepared-statement cache keeps
them all instead of preparing a new one for each size.

- ``start``: one conditional UPDATE; PostgreSQL and SQLite return the moved rows with it
  (``RETURNING``), MariaDB / MySQL read them in a second statement, told apart from rows another
  process moved by this worker's id and this start's stamp (rows it moved stay locked by its
  transaction).
- ``lock_for_finish``: the rows of outcomes that carry no copy of their task, ``FOR UPDATE``
  in id order (the order every move of many rows takes, see ``moves._finish_in``).
- ``children``: which tasks wait on the ones that just ended (``deps.children_of``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.models import Task, TaskStatus
from conveyor.store.bulk import marker
from conveyor.store.rows import READ, task_from_values

_COLUMNS = ", ".join(READ)
_RETURNING = ("postgresql", "sqlite")  # UPDATE ... RETURNING (MariaDB has it for DELETE only)


def padded(ids: Sequence[str]) -> tuple[str, ...]:
    """``ids`` up to the next power of two in length, repeating the last."""
    size = 1 << max(0, len(ids) - 1).bit_length()
    return (*ids, *[ids[-1]] * (size - len(ids)))


async def start(conn: AsyncConnection, ids: Sequence[str], worker_id: str,
                now: float) -> list[Task]:
    """Move the PENDING ones of ``ids`` to PROCESSING for ``worker_id``; the tasks moved."""
    d = conn.dialect
    keys = padded(ids)
    update, returning = _start_sql(d.name, d.paramstyle, len(keys))
    result = await conn.exec_driver_sql(update, (worker_id, now, now, *keys))
    if not returning:
        result = await conn.exec_driver_sql(_started_sql(d.paramstyle, len(keys)),
                                            (*keys, worker_id, now))
    return [task_from_values(row) for row in result.all()]


async def lock_for_finish(conn: AsyncConnection, ids: Sequence[str]) -> list[Task]:
    """The rows of ``ids``, locked in id order."""
    d = conn.dialect
    keys = padded(ids)
    result = await conn.exec_driver_sql(_lock_sql(d.name, d.paramstyle, len(keys)), keys)
    return [task_from_values(row) for row in result.all()]


async def children(conn: AsyncConnection, parent_ids: Sequence[str]) -> list[str]:
    """The ids of the tasks that wait on any of ``parent_ids`` (asked at every finish)."""
    keys = padded(parent_ids)
    sql = _children_sql(conn.dialect.paramstyle, len(keys))
    return [row[0] for row in (await conn.exec_driver_sql(sql, keys)).all()]


def _marks(paramstyle: str, first: int, count: int) -> list[str]:
    mark = marker(paramstyle)
    return [mark(first + i) for i in range(count)]


@functools.lru_cache(maxsize=64)
def _start_sql(dialect: str, paramstyle: str, count: int) -> tuple[str, bool]:
    worker, started, updated, *ids = _marks(paramstyle, 0, 3 + count)
    returning = dialect in _RETURNING
    sql = (
        f"UPDATE task SET status = '{TaskStatus.PROCESSING}', attempt = attempt + 1, "
        f"worker_id = {worker}, started_at = {started}, finished_at = NULL, "
        f"updated_at = {updated}, version = version + 1 "
        f"WHERE id IN ({', '.join(ids)}) AND status = '{TaskStatus.PENDING}'"
    )
    return (f"{sql} RETURNING {_COLUMNS}" if returning else sql), returning


@functools.lru_cache(maxsize=64)
def _started_sql(paramstyle: str, count: int) -> str:
    *ids, worker, started = _marks(paramstyle, 0, count + 2)
    return (
        f"SELECT {_COLUMNS} FROM task WHERE id IN ({', '.join(ids)}) "
        f"AND status = '{TaskStatus.PROCESSING}' AND worker_id = {worker} "
        f"AND started_at = {started}"
    )


@functools.lru_cache(maxsize=64)
def _lock_sql(dialect: str, paramstyle: str, count: int) -> str:
    ids = ", ".join(_marks(paramstyle, 0, count))
    lock = "" if dialect == "sqlite" else " FOR UPDATE"  # SQLite has one writer at a time
    return f"SELECT {_COLUMNS} FROM task WHERE id IN ({ids}) ORDER BY id{lock}"


@functools.lru_cache(maxsize=64)
def _children_sql(paramstyle: str, count: int) -> str:
    ids = ", ".join(_marks(paramstyle, 0, count))
    return f"SELECT child_id FROM task_deps WHERE parent_id IN ({ids})"
