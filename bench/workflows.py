"""Workflows (issue 14): what the release costs the finish path, what a 10,000-node create
costs through the API, and a fan-out / fan-in workflow drained against plain tasks.

    .venv/bin/python bench/workflows.py                  # every figure, every database
    .venv/bin/python bench/workflows.py --tasks 2000 --only sqlite --figure store
    .venv/bin/python bench/workflows.py --figure create --figure drain

Per database (a throw-away one on the local MariaDB and PostgreSQL; a SQLite file): finish
``--tasks`` started tasks in batches of 500, once without children (the finish path's only
extra work is one indexed SELECT on ``task_deps`` per batch) and once with one WAITING child
each (every child released in its parent's transaction); then a fan-out of ``--fan`` WAITING
children of one root, all released by the root's one finish, and a fan-in of as many parents
whose join is released by the last batch.

``create``: ``POST /api/v1/workflows`` of a ``--nodes`` fan-out / fan-in (a root, its leaves, a
join after every leaf) to the real app in this process on each database, 3 times after one
to warm up; seconds from the request to the 201 (the app's own work: parsing, checks, one
transaction).

``drain``: one distributed fleet (``conveyor api``, 1 scheduler, 2 workers of capacity 100 on
MariaDB and Redis, as figure 3 of ``bench/run.py``), warmed up with 500 no-ops, drains
``--nodes`` independent no-ops (queued while paused, then resumed; first start to last
finish), then runs a workflow of as many no-op nodes shaped as above (root start to join
finish). The ratio of the two rates is the figure (issue 14's bar: at least 0.7).

Prints a table and writes ``bench/results/workflows-<ts>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
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
from tests.integration.test_api import serve  # noqa: E402
from tests.support.databases import BACKENDS, fresh_database  # noqa: E402

import conveyor_figs as cf  # noqa: E402
from conveyor.models import Task, TaskStatus  # noqa: E402
from conveyor.store.protocol import Outcome  # noqa: E402
from conveyor.store.sql import SqlStore  # noqa: E402
from harness import Procs, sql, stop_everything  # noqa: E402

S = TaskStatus
BATCH = 500
WARM_UP = 500  # no-ops run before the drain is timed, so neither phase pays the start-up


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


def fan_body(nodes: int, task_type: str = "echo") -> dict[str, Any]:
    """A root, ``nodes - 2`` leaves after it and a join after every leaf."""
    leaves = [f"leaf{i}" for i in range(nodes - 2)]
    tasks: dict[str, Any] = {"root": {"task_type": task_type}}
    tasks |= {leaf: {"task_type": task_type, "after": ["root"], "payload": {"i": i}}
              for i, leaf in enumerate(leaves)}
    tasks["join"] = {"task_type": task_type, "after": leaves}
    return {"name": "fan", "tasks": tasks}


async def create(backend: str, nodes: int, runs: int = 3) -> dict[str, Any]:
    body = fan_body(nodes)
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database(backend, Path(tmp)) as url, serve(url) as api:
            gc.freeze()  # as a started process does (process.Process.run)
            for run in range(runs + 1):  # the first warms the app up (imports, schemas)
                began = time.perf_counter()
                answer = await api.http.post("/api/v1/workflows", json=body, timeout=300)
                assert answer.status_code == 201, answer.text[:500]
                if run:
                    seconds.append(time.perf_counter() - began)
    return {"backend": backend, "nodes": nodes, "create_s": [round(x, 3) for x in seconds],
            "create_s_median": round(sorted(seconds)[len(seconds) // 2], 3)}


async def drain(nodes: int) -> dict[str, Any]:
    procs = Procs(BENCH / "results" / "logs" / f"workflows-{int(time.time())}")
    try:
        async with cf.Cluster(procs) as cluster:
            await cluster.api()
            cluster.scheduler()
            for _ in range(2):
                cluster.worker(100)
            await cluster.wait_ready(2)
            await cluster.insert("noop", {}, WARM_UP)  # the workers' task processes start
            await cluster.wait_status("SUCCESS", WARM_UP, 120)
            since = time.time()
            await cluster.post("/api/v1/queues/normal/pause")
            await cluster.insert("noop", {}, nodes)
            await cluster.post("/api/v1/queues/normal/resume")
            await cluster.wait_status("SUCCESS", WARM_UP + nodes, 600)
            plain = await _span(cluster.db, "NOT IN", since)
            flow = await cluster.post("/api/v1/workflows", fan_body(nodes, "noop"))
            await cluster.wait_status("SUCCESS", WARM_UP + 2 * nodes, 600)
            shaped = await _span(cluster.db, "IN", since)
            assert flow["nodes"]["join"]
    finally:
        procs.stop_all()
    plain_rate, flow_rate = nodes / plain, nodes / shaped
    return {"nodes": nodes, "plain_per_s": round(plain_rate), "workflow_per_s": round(flow_rate),
            "plain_s": round(plain, 3), "workflow_s": round(shaped, 3),
            "ratio": round(flow_rate / plain_rate, 3)}


async def _span(db: str, among: str, since: float) -> float:
    """First start to last finish of the tasks made since ``since`` (not) in a workflow."""
    [(first, last)] = await sql(
        "SELECT MIN(started_at), MAX(finished_at) FROM task WHERE created_at >= %s AND id "
        f"{among} (SELECT task_id FROM workflow_nodes)", db, [since])
    return float(last) - float(first)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--fan", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--only", choices=BACKENDS)
    parser.add_argument("--figure", action="append", choices=["store", "create", "drain"])
    args = parser.parse_args()
    figures = args.figure or ["store", "create", "drain"]
    backends = [b for b in BACKENDS if args.only in (None, b)]
    out: dict[str, Any] = {}
    if "store" in figures:
        rows = [await measure(b, args.tasks, args.fan) for b in backends]
        print(f"{'database':10} {'finish/s':>10} {'+1 child':>10} {'fan-out':>9} {'fan-in':>9}")
        for r in rows:
            print(f"{r['backend']:10} {r['finish_per_s_no_children']:>10} "
                  f"{r['finish_per_s_one_child_each']:>10} {r['fan_out_release_s']:>8}s "
                  f"{r['fan_in_finish_s']:>8}s")
        out["rows"] = rows
    if "create" in figures:
        out["create"] = [await create(b, args.nodes) for b in backends]
        for r in out["create"]:
            print(f"create {r['nodes']} nodes on {r['backend']}: {r['create_s']} s")
    if "drain" in figures:
        out["drain"] = await drain(args.nodes)
        print("drain: {plain_per_s}/s plain, {workflow_per_s}/s as a workflow, ratio {ratio}"
              .format(**out["drain"]))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = BENCH / "results" / f"workflows-{stamp}.json"
    load = os.getloadavg()
    path.write_text(json.dumps({"at": stamp, "host": platform.node(), "load": load, **out},
                               indent=2))
    print(f"wrote {path} (load average {load[0]:.1f})")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    finally:
        stop_everything()
