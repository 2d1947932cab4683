"""One UPDATE statement for a batch of finished attempts, in each database's own syntax.

Writing outcomes row by row costs a round trip per task (MariaDB's driver runs executemany as
separate statements), and a SQLAlchemy ``CASE`` expression per batch costs ~0.2 ms of CPU a row
to build. Joining the table to a derived table of new values is one round trip and cheap text:

- MariaDB / MySQL: ``UPDATE task JOIN (SELECT ... UNION ALL SELECT ...) o ON ... SET ...``
- PostgreSQL:      ``UPDATE task SET ... FROM (VALUES (...), ...) AS o(cols) WHERE ...``
- SQLite (3.33+):  ``UPDATE task SET ... FROM (VALUES (...), ...) AS o WHERE ...``

Every row is conditional on ``status = 'PROCESSING'`` and on the version read by the caller,
exactly like the single-row compare-and-set.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable, Sequence
from typing import Any

# (column, PostgreSQL type for the first VALUES row, which types the whole derived table)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "VARCHAR"),
    ("old_version", "INTEGER"),
    ("status", "VARCHAR"),
    ("result", "TEXT"),
    ("error", "TEXT"),
    ("finished_at", "DOUBLE PRECISION"),
    ("run_at", "DOUBLE PRECISION"),
    ("retry_count", "INTEGER"),
)
CHANGED = [name for name, _ in COLUMNS[2:]]


def finish_update(
    dialect: str, paramstyle: str, rows: Sequence[dict[str, Any]], now: float
) -> tuple[str, tuple[Any, ...]]:
    """SQL text in the driver's own placeholder style, and its positional parameters.

    Built as plain text for ``exec_driver_sql``: SQLAlchemy's ``text()`` would create a bind
    object per value, which for a 100-row batch costs more than the round trips saved. The
    text depends on the row count alone, so it is made once per count (``_finish_sql``).
    """
    params = tuple(itertools.chain.from_iterable(map(_values, rows)))
    return _finish_sql(dialect, paramstyle, len(rows)), (*params, now)


_values = operator.itemgetter(*(name for name, _ in COLUMNS))


@functools.lru_cache(maxsize=256)  # batches are chunked to 200 rows (``moves``)
def _finish_sql(dialect: str, paramstyle: str, count: int) -> str:
    mark = marker(paramstyle)
    width = len(COLUMNS)
    tuples = [[mark(i * width + j) for j in range(width)] for i in range(count)]
    render = {"mysql": _mysql, "mariadb": _mysql, "postgresql": _postgres}.get(dialect, _sqlite)
    return render(tuples, mark(count * width))


def marker(paramstyle: str) -> Callable[[int], str]:
    """The placeholder for the n-th parameter (0-based) in a DB-API paramstyle."""
    styles: dict[str, Callable[[int], str]] = {
        "qmark": lambda n: f"?{n + 1}",  # numbered: the statements use values out of order
        "format": lambda n: "%s",
        "pyformat": lambda n: "%s",
        "numeric": lambda n: f":{n + 1}",
        "numeric_dollar": lambda n: f"${n + 1}",
    }
    return styles[paramstyle]


def _mysql(tuples: list[list[str]], now: str) -> str:
    first = ", ".join(f"{b} AS {name}" for b, (name, _) in zip(tuples[0], COLUMNS, strict=True))
    rest = "".join(f" UNION ALL SELECT {', '.join(t)}" for t in tuples[1:])
    sets = ", ".join(f"t.{c} = o.{c}" for c in CHANGED)
    return (
        f"UPDATE task AS t JOIN (SELECT {first}{rest}) AS o "
        "ON t.id = o.id AND t.version = o.old_version "
        f"SET {sets}, t.version = t.version + 1, t.updated_at = {now} "
        "WHERE t.status = 'PROCESSING'"
    )


def _postgres(tuples: list[list[str]], now: str) -> str:
    pairs = zip(tuples[0], COLUMNS, strict=True)
    typed = ", ".join(f"CAST({b} AS {kind})" for b, (_, kind) in pairs)
    values = ", ".join([f"({typed})", *(f"({', '.join(t)})" for t in tuples[1:])])
    names = ", ".join(name for name, _ in COLUMNS)
    sets = ", ".join(f"{c} = o.{c}" for c in CHANGED)
    return (
        f"UPDATE task AS t SET {sets}, version = t.version + 1, updated_at = {now} "
        f"FROM (VALUES {values}) AS o({names}) "
        "WHERE t.id = o.id AND t.version = o.old_version AND t.status = 'PROCESSING'"
    )


def _sqlite(tuples: list[list[str]], now: str) -> str:
    values = ", ".join(f"({', '.join(t)})" for t in tuples)
    position = {name: i + 1 for i, (name, _) in enumerate(COLUMNS)}
    sets = ", ".join(f"{c} = o.column{position[c]}" for c in CHANGED)
    return (
        f"UPDATE task SET {sets}, version = task.version + 1, updated_at = {now} "
        f"FROM (VALUES {values}) AS o "
        "WHERE task.id = o.column1 AND task.version = o.column2 AND task.status = 'PROCESSING'"
    )


# Moving schedules on after a firing batch (``store.schedules``) in one statement, on MariaDB /
# MySQL and PostgreSQL (SQLite's driver runs an executemany in one call). (column, move key,
# PostgreSQL type for the first VALUES row, which types the derived table)
_MOVES = (("t", "b_tenant", "VARCHAR"), ("n", "b_name", "VARCHAR"), ("v", "b_version", "INTEGER"),
          ("nx", "b_next", "DOUBLE PRECISION"), ("bu", "b_buffered", "INTEGER"),
          ("mi", "b_missed", "INTEGER"), ("lf", "b_last", "DOUBLE PRECISION"),
          ("lt", "b_task", "VARCHAR"))
_MOVED = (("next_fire_at", "o.nx"), ("version", "s.version + 1"),
          ("buffered", "s.buffered + o.bu"), ("missed", "s.missed + o.mi"),
          ("last_fire_at", "COALESCE(o.lf, s.last_fire_at)"),
          ("last_task_id", "COALESCE(o.lt, s.last_task_id)"))


def _moved(target: str) -> str:
    """The SET list; MySQL names the updated table's columns with its alias, PostgreSQL not."""
    return ", ".join(f"{target}{column} = {value}" for column, value in _MOVED)


def schedule_moves(
    dialect: str, paramstyle: str, moves: Sequence[dict[str, Any]]
) -> tuple[str, tuple[Any, ...]]:
    """Each row applies only if the schedule still has the version it was read with, so the
    matched count says whether all did."""
    mark = marker(paramstyle)
    params: list[Any] = []
    rows: list[list[str]] = []
    for move in moves:
        rows.append([mark(len(params) + i) for i in range(len(_MOVES))])
        params.extend(move[key] for _, key, _ in _MOVES)
    on = "s.tenant = o.t AND s.name = o.n AND s.version = o.v"
    if dialect == "postgresql":
        first = ", ".join(f"CAST({b} AS {kind})" for b, (_, _, kind) in zip(
            rows[0], _MOVES, strict=True))
        values = ", ".join([f"({first})", *(f"({', '.join(r)})" for r in rows[1:])])
        names = ", ".join(column for column, _, _ in _MOVES)
        return (f"UPDATE schedules AS s SET {_moved('')} FROM (VALUES {values}) AS o({names}) "
                f"WHERE {on}", tuple(params))
    first = ", ".join(f"{b} AS {column}" for b, (column, _, _) in zip(
        rows[0], _MOVES, strict=True))
    union = "".join(f" UNION ALL SELECT {', '.join(r)}" for r in rows[1:])
    return (f"UPDATE schedules AS s JOIN (SELECT {first}{union}) AS o ON {on} "
            f"SET {_moved('s.')}",
            tuple(params))
