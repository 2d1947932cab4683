"""Schedules: how fast a burst of due schedules fires, and what an idle leader costs.

    .venv/bin/python bench/schedules.py                      # SQLite (standalone's store)
    .venv/bin/python bench/schedules.py --db mariadb         # a throw-away MariaDB database
    .venv/bin/python bench/schedules.py --due 10000 --idle 100000 --seconds 10

1. ``--due`` schedules all due in the same second: the time from the leader's pass starting to
   every fire's task committed and queued (docs/design.md §9: within 2 s for 10,000).
2. ``--idle`` schedules none of which is due for an hour: the leader's firing duty runs its real
   loop for ``--seconds``; the CPU it used (this process, which runs nothing else) as a share of
   one core (the bar: under 5 %; the next due schedule is found by index, not by a scan).

In-process, like ``conveyor standalone``: the real store, firing duty and elector on the
in-process coordination, so what is measured is SQL and the duty, not HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from conveyor.bootstrap import build
from conveyor.config import load_settings
from conveyor.schedules.cron import Trigger
from conveyor.schedules.model import Overlap, Schedule, TaskTemplate
from conveyor.store.schedule_rows import definition_row, new_row
from conveyor.store.schema import schedules, task

MARIADB = "mysql+asyncmy://root@127.0.0.1"


@asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
            yield str(Path(tmp) / "bench.db")
        return
    name = f"conveyor_bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(MARIADB)
    async with admin.begin() as conn:
        await conn.execute(sa.text(f"CREATE DATABASE `{name}`"))
    try:
        yield f"mysql://root@127.0.0.1/{name}"
    finally:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        await admin.dispose()


async def add_schedules(parts_db: sa.ext.asyncio.AsyncEngine, count: int, due_at: float,
                        prefix: str) -> None:
    """Rows written directly, 1,000 per INSERT: the setup is not what is measured."""
    rows = []
    for i in range(count):
        s = Schedule(name=f"{prefix}{i}", template=TaskTemplate("noop"),
                     trigger=Trigger(every_seconds=3600), overlap=Overlap.ALLOW,
                     next_fire_at=due_at, created_at=due_at, updated_at=due_at)
        rows.append({"tenant": s.tenant, "name": s.name, **definition_row(s), **new_row(s)})
    async with parts_db.begin() as conn:
        for i in range(0, len(rows), 1000):
            await conn.execute(schedules.insert(), rows[i:i + 1000])


async def run(kind: str, due: int, idle: int, seconds: float) -> None:
    async with database(kind) as url:
        parts = await build(load_settings(database_url=url), standalone=True)
        try:
            await parts.store.migrate()
            scheduler = parts.scheduler()
            engine = parts.store.db.engine
            now = time.time()
            await scheduler.elector.run_once(now)
            scheduler.elector.start()  # renews the lease, as in a running scheduler
            await add_schedules(engine, due, now, "due-")
            began = time.perf_counter()
            await scheduler.firing.run_once(now)
            took = time.perf_counter() - began
            async with engine.connect() as conn:
                made = (await conn.execute(sa.select(sa.func.count()).select_from(task))).scalar()
            print(f"{kind}: {due} schedules due in one second fired in {took:.2f} s "
                  f"({made} tasks, {due / took:,.0f} fires/s)")
            await add_schedules(engine, idle, now + 3600, "idle-")
            await scheduler.firing.run_once(time.time())  # warm: caches, connections
            duty = scheduler.firing
            cpu = time.process_time()
            wall = time.perf_counter()
            duty.start()
            await asyncio.sleep(seconds)
            await duty.stop()
            await scheduler.elector.stop()
            share = (time.process_time() - cpu) / (time.perf_counter() - wall)
            print(f"{kind}: idle leader with {idle + due} schedules: {share:.1%} of one core "
                  f"over {seconds:g} s (firing duty and elector), {duty.passes} passes")
        finally:
            await parts.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "mariadb"), default="sqlite")
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--idle", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(run(args.db, args.due, args.idle, args.seconds))


if __name__ == "__main__":
    main()
