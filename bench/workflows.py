"""Dependencies in the store (issue 14): what the release costs the finish path.

    .venv/bin/python bench/workflows.py                  # every database
    .venv/bin/python bench/workflows.py --tasks 2000 --only sqlite

Per database (a throw-away one on the local MariaDB and PostgreSQL; a SQLite file): finish
``--tasks`` started tasks in batches of 500, once without children (the finish path's only
extra work is one indexed SELECT on ``task_deps`` per batch) and once with one WAITING child
each (every child released in its parent's transaction); then a fan-out of ``--fan`` WAITING
children of one root, all released by the root's one finish, and a fan-in of as many parents
whose join is released by the last batch. Prints a table and writes
``bench/results/workflows-<ts>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from tests.contract.store_support import make_task  # noqa: E402
from tests.support.databases import BACKENDS, fresh_database  # noqa: E402

from conveyor.models import Task, TaskStatus  # noqa: E402
from conveyor.store.protocol import Outcome  # noqa: E402
from conveyor.store.sql import SqlStore  # noqa: E402

S = TaskStatus
BATCH = 500


async def finish_all(store: SqlStore, tasks: list[Task]) -> tuple[float, int]:
    """Seconds to finish ``tasks`` in batches (started first, untimed), and children released."""
    for i in range(0, len(tasks), BATCH):
        await store.moves.start([t.id for t in tasks[i:i + BATCH]], "w1", time.time())
    released = 0
    began = time.perf_counter()
    for i in range(0, len(tasks), BATCH):
        part = tasks[i:i + BATCH]
        done = await store.moves.finish([Outcome(t.id, 1, S.SUCCESS, result={"n": 1})
                                         for t in part], time.time())
        released += len(done.released)
    return time.perf_counter() - began, released


def waiting(*parents: Task) -> Task:
    return make_task(status=S.WAITING, parents=tuple(p.id for p in parents))


async def insert(store: SqlStore, tasks: list[Task]) -> None:
    for i in range(0, len(tasks), 1000):
        await store.tasks.insert(tasks[i:i + 1000])


async def measure(backend: str, tasks: int, fan: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database(backend, Path(tmp)) as url:
            store = SqlStore(url)
            await store.migrate()
            try:
                plain = [make_task() for _ in range(tasks)]
                await insert(store, plain)
                alone, _ = await finish_all(store, plain)
                parents = [make_task() for _ in range(tasks)]
                await insert(store, parents + [waiting(p) for p in parents])
                with_kids, released = await finish_all(store, parents)
                assert released == tasks, released
                root = make_task()
                await insert(store, [root] + [waiting(root) for _ in range(fan)])
                fan_out, out_released = await finish_all(store, [root])
                assert out_released == fan, out_released
                many = [make_task() for _ in range(fan)]
                join = replace(waiting(*many))
                await insert(store, [*many, join])
                fan_in, in_released = await finish_all(store, many)
                assert in_released == 1, in_released
            finally:
                await store.close()
    return {
        "backend": backend, "tasks": tasks, "fan": fan,
        "finish_per_s_no_children": round(tasks / alone),
        "finish_per_s_one_child_each": round(tasks / with_kids),
        "fan_out_release_s": round(fan_out, 3),
        "fan_in_finish_s": round(fan_in, 3),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--fan", type=int, default=1000)
    parser.add_argument("--only", choices=BACKENDS)
    args = parser.parse_args()
    rows = [await measure(b, args.tasks, args.fan) for b in BACKENDS
            if args.only in (None, b)]
    print(f"{'database':10} {'finish/s':>10} {'+1 child':>10} {'fan-out':>9} {'fan-in':>9}")
    for r in rows:
        print(f"{r['backend']:10} {r['finish_per_s_no_children']:>10} "
              f"{r['finish_per_s_one_child_each']:>10} {r['fan_out_release_s']:>8}s "
              f"{r['fan_in_finish_s']:>8}s")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = BENCH / "results" / f"workflows-{stamp}.json"
    out.write_text(json.dumps({"at": stamp, "host": platform.node(), "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
