"""Re-sealing every stored task config (``conveyor secrets rotate``), in bounded batches.

The pages follow the primary key of ``task_config`` (whatever its columns), so a pass reads
``batch`` rows at a time however many configs there are. A row is written back only if its
``executor_config`` is still the text that was read: a config PUT meanwhile was sealed by the
API with the current key, and is left alone (counted as ``raced``) rather than overwritten
with an older version. ``updated_at`` is kept: it says when an admin changed the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from conveyor.store.database import Database
from conveyor.store.rows import dumps, loads
from conveyor.store.schema import task_config

Change = Callable[[str, dict[str, Any]], dict[str, Any] | None]
"""``(executor, executor_config)`` → the config to store, or ``None`` to leave the row."""


@dataclass
class Pass:
    scanned: int = 0
    rewritten: int = 0
    raced: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # row key → why it could not be read


async def reseal_configs(db: Database, change: Change, batch: int = 200) -> Pass:
    key = list(task_config.primary_key.columns)
    done = Pass()
    after: tuple[Any, ...] | None = None
    while True:
        query = sa.select(*key, task_config.c.executor, task_config.c.executor_config)
        if after is not None:
            query = query.where(sa.tuple_(*key) > sa.tuple_(*after))
        rows = await db.rows(query.order_by(*key).limit(batch))
        if not rows:
            return done
        async with db.begin() as conn:
            for row in rows:
                done.scanned += 1
                where = [c == row[c.name] for c in key]
                label = "/".join(str(row[c.name]) for c in key)
                try:
                    new = change(row["executor"], loads(row["executor_config"]))
                except Exception as exc:
                    done.failed[label] = str(exc)
                    continue
                if new is None:
                    continue
                result = await conn.execute(
                    task_config.update()
                    .where(*where, task_config.c.executor_config == row["executor_config"])
                    .values(executor_config=dumps(new))
                )
                if result.rowcount:
                    done.rewritten += 1
                else:
                    done.raced += 1
        after = tuple(rows[-1][c.name] for c in key)
