"""Fair dispatch between tenants (issue 12): how long one tenant's single task waits behind
another tenant's backlog of 100,000 queued tasks.

    .venv/bin/python bench/fairness.py              # 5 runs per weighting, backlog 100,000
    .venv/bin/python bench/fairness.py --runs 3 --backlog 20000

The real scheduler parts on the real Redis (a fresh key prefix, deleted afterwards) and a SQLite
store in a temp directory: tenant A's backlog is queued first, the dispatcher runs a random
number of passes (so A's turn is cut anywhere, as in a live system), then tenant B queues one
task and passes run back to back until it is placed. Workers are simulated: after each pass every
placed id is taken and acked at once, so the fleet always has ``slots`` free and a pass places
``batch`` ids. Weights are set with the store's ``tenant_limits``, read through the dispatcher's
cache like in production.

Reported per weighting (A:B), worst of the runs: B's wait in dispatch passes (1 = the first pass
after it was queued), in milliseconds (enqueue to the end of the pass that placed it; the
dispatcher's wake-up, at most ``scan_interval`` when idle, is not part of it since the
dispatcher is busy with A's backlog), and how many of A's ids that pass placed before B's. As a
reference, the same backlog queued under one tenant (the layout before fair dispatch): B behind
A's backlog is dispatched after ``backlog / batch`` passes. Prints a table and writes
``bench/results/fairness-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.bootstrap import Components, build
from conveyor.config import load_settings
from conveyor.models import Priority, QueueItem, TenantLimits, WorkerInfo
from conveyor.scheduler import Scheduler
from harness import BENCH, REDIS_DB, REDIS_HOST, REDIS_PORT, summary

# One worker of 100 slots: a pass places ``BATCH`` ids, and its queue keeps them in the order
# the pass placed them, so "how many of A's ids went before B's" can be read from it.
WORKERS, CAPACITY = 1, 100
BATCH = 100
WEIGHTINGS = ((1, 1), (1, 3), (3, 1), (10, 1))  # A:B


async def enqueue(parts: Components, tenant: str, n: int, prefix: str = "") -> None:
    for first in range(0, n, 10_000):
        await parts.coordination.queues.enqueue([
            QueueItem(f"{prefix}{tenant}{i}", "echo", Priority.NORMAL, tenant)
            for i in range(first, min(n, first + 10_000))
        ])


async def drain_workers(parts: Components) -> list[QueueItem]:
    """Every id the last pass placed: taken and acked at once, as by infinitely fast workers."""
    taken: list[QueueItem] = []
    for w in range(WORKERS):
        items = await parts.coordination.worker_queues.fetch(f"w{w}", 10_000, 0.0)
        await parts.coordination.worker_queues.ack(f"w{w}", items)
        taken += items
    return taken


async def dispatch_pass(scheduler: Scheduler) -> None:
    """One dispatcher pass under a fresh lease renewal (the elector's trust lasts seconds)."""
    await scheduler.elector.run_once(time.time())
    await scheduler.dispatcher.run_once(time.time())


async def one_run(
    parts: Components, backlog: int, a_tenant: str, b_tenant: str, rng: random.Random
) -> dict[str, float]:
    """A's backlog, a few passes, B's one task, then passes until B's task is placed."""
    scheduler = parts.scheduler()
    now = time.time()
    await scheduler.elector.run_once(now)
    for w in range(WORKERS):
        await parts.coordination.registry.heartbeat(
            WorkerInfo(f"w{w}", "bench", 1, CAPACITY, types=("echo",)), 600)
    await enqueue(parts, a_tenant, backlog, prefix=uuid.uuid4().hex[:6])
    for _ in range(rng.randrange(0, 6)):  # A's turn is cut wherever these passes stop
        await dispatch_pass(scheduler)
        await drain_workers(parts)
    b_id = f"b-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    await parts.coordination.queues.enqueue([
        QueueItem(b_id, "echo", Priority.NORMAL, b_tenant)])
    passes = 0
    pass_ms: list[float] = []
    while True:
        passes += 1
        await scheduler.elector.run_once(time.time())
        began = time.perf_counter()
        await scheduler.dispatcher.run_once(time.time())
        pass_ms.append((time.perf_counter() - began) * 1000)
        placed = await drain_workers(parts)
        order = [i.task_id for i in placed]
        if b_id in order:
            waited = (time.perf_counter() - started) * 1000
            ahead = sum(1 for i in placed[: order.index(b_id)] if i.tenant == a_tenant)
            return {"passes": passes, "wait_ms": waited, "a_before_b": ahead,
                    "pass_ms": max(pass_ms)}
        if passes > backlog:
            raise RuntimeError("B's task was never placed")


async def weighting(
    backlog: int, runs: int, weights: tuple[int, int] | None, rng: random.Random
) -> list[dict[str, float]]:
    """``runs`` runs on fresh prefixes; ``weights`` None queues A and B under one tenant."""
    results = []
    for _ in range(runs):
        prefix = f"bench:fair:{uuid.uuid4().hex[:10]}:"
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings(
                database_url=str(Path(tmp) / "c.db"),
                redis_url=f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}", redis_prefix=prefix,
                scheduler={"batch_size": BATCH},
            )
            parts = await build(settings)
            try:
                await parts.store.migrate()
                if weights is not None:
                    for tenant, w in zip(("a", "b"), weights, strict=True):
                        await parts.store.tenant_limits.put_limits(TenantLimits(tenant, w))
                b_tenant = "b" if weights is not None else "a"
                results.append(await one_run(parts, backlog, "a", b_tenant, rng))
            finally:
                await drop_prefix(parts, prefix)
                await parts.close()
    return results


async def drop_prefix(parts: Components, prefix: str) -> None:
    import redis.asyncio as aioredis

    raw = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    try:
        keys = [k async for k in raw.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await raw.delete(*keys[start:start + 1000])
    finally:
        await raw.aclose()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    figures: dict[str, Any] = {}
    cases: list[tuple[str, tuple[int, int] | None, int]] = [
        (f"A:B = {a}:{b}", (a, b), args.runs) for a, b in WEIGHTINGS
    ]
    cases.append(("one tenant (before fair dispatch)", None, 1))
    print(f"backlog {args.backlog:,} of tenant A, 1 task of B; passes of {BATCH}")
    print(f"{'case':<36}{'passes (worst)':>16}{'wait ms (worst)':>17}{'A ahead of B':>14}"
          f"{'pass ms (worst)':>17}")
    for name, weights, runs in cases:
        found = await weighting(args.backlog, runs, weights, rng)
        figures[name] = {
            "weights": weights, "runs": found,
            "summary": {m: summary([r[m] for r in found]) for m in found[0]},
        }
        worst = {m: max(r[m] for r in found) for m in found[0]}
        print(f"{name:<36}{worst['passes']:>16.0f}{worst['wait_ms']:>17.1f}"
              f"{worst['a_before_b']:>14.0f}{worst['pass_ms']:>17.1f}")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=12)
    parsed = parser.parse_args()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    figures = asyncio.run(main(parsed))
    report = {
        "benchmark": "fairness", "at": stamp, "backlog": parsed.backlog, "runs": parsed.runs,
        "batch": BATCH, "slots": WORKERS * CAPACITY, "python": platform.python_version(),
        "machine": platform.machine(), "figures": figures,
    }
    out = BENCH / "results" / f"fairness-{stamp}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out.relative_to(BENCH.parent)}")
