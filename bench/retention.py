"""Retention under load (issue 12): how fast the purge deletes, and what it costs the hot path.

    .venv/bin/python bench/retention.py                    # 100,000 tasks + their logs, both DBs
    .venv/bin/python bench/retention.py --tasks 20000 --only postgres

Per database (a throw-away one on the local MariaDB and PostgreSQL): fill ``--tasks`` expired
SUCCESS tasks with one log row each; run the hot path (one client creating tasks one request
at a time, one worker starting and finishing them in batches, ``tests/support/purge_load.py``)
for ``--baseline`` seconds alone; then while the retention duty, in a process of its own as on a
scheduler, purges every expired row with the default settings (batches of 1,000, 20 a pass):
once with passes back to back, once paced as the running duty paces itself (a second between
capped passes), the store filled again and the hot path measured alone again before each.
Prints a table and writes ``bench/results/retention-<ts>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # the shared load lives with the tests that use it

from tests.support.databases import fresh_database  # noqa: E402
from tests.support.purge_load import (  # noqa: E402
    HotPath,
    fill,
    leading_purger,
    purge_everything,
)

from conveyor.config import RetentionSettings  # noqa: E402
from conveyor.store.sql import SqlStore  # noqa: E402

BACKENDS = ("mariadb", "postgres")


def rates(hot: HotPath, since: float, until: float) -> dict[str, float]:
    seconds = until - since
    latencies = sorted(
        lat for at, lat in zip(hot.created, hot.create_seconds, strict=True) if since <= at < until
    )
    p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan")
    return {
        "seconds": seconds,
        "creates_per_s": HotPath.between(hot.created, since, until) / seconds,
        "finishes_per_s": HotPath.between(hot.finished, since, until) / seconds,
        "create_p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "create_p99_ms": 1000 * p99,
    }


async def purge_here(url: str, paced: bool) -> None:
    """The child process: purge everything, print when it began and ended (monotonic clocks
    are one clock for every process on Linux) and what it removed."""
    store = SqlStore(url)
    try:
        duty = await leading_purger(store, RetentionSettings())
        began = time.monotonic()
        removed = await purge_everything(duty, paced=paced)
        print(json.dumps({"began": began, "ended": time.monotonic(), "removed": removed,
                          "by_table": duty.removed}))
    finally:
        await store.close()


async def purge_elsewhere(url: str, paced: bool) -> dict[str, Any]:
    """The purge in a process of its own, as on a scheduler: the hot path's process then
    measures the database's contention, not its own event loop's."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--purge", url, *(["--paced"] if paced else []),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await child.communicate()
    if child.returncode:
        raise RuntimeError(f"the purging process failed with status {child.returncode}")
    found: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return found


async def run_one(backend: str, tasks: int, baseline: float) -> dict[str, Any]:
    policy = RetentionSettings()
    figures: dict[str, Any] = {"rows_filled": 2 * tasks}
    async with fresh_database(backend, BENCH / "results") as url:
        store = SqlStore(url)
        await store.migrate()
        hot, stop = HotPath(store), asyncio.Event()
        try:
            load = [asyncio.create_task(hot.creates(stop)), asyncio.create_task(hot.runs(stop))]
            for mode, paced in (("back_to_back", False), ("paced", True)):
                began = time.monotonic()
                await fill(store, tasks, time.time(), policy.succeeded)
                # The hot path alone just before each purge: the machine's other load drifts.
                alone_from = time.monotonic()
                await asyncio.sleep(baseline)
                got = await purge_elsewhere(url, paced)
                seconds = got["ended"] - got["began"]
                figures[mode] = {
                    "fill_seconds": alone_from - began,
                    "rows_removed": got["removed"], "by_table": got["by_table"],
                    "purge_seconds": seconds, "rows_purged_per_s": got["removed"] / seconds,
                    "without_purge": rates(hot, alone_from, alone_from + baseline),
                    "during_purge": rates(hot, got["began"], got["ended"]),
                }
        finally:
            stop.set()
            await asyncio.gather(*load, return_exceptions=True)
            await store.close()
    return figures


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| database | purge | rows purged/s | creates/s alone → during "
        "| finishes/s alone → during | create p99 ms alone → during |",
        "|---|---|---|---|---|---|",
    ]
    for backend, r in results.items():
        for mode in ("back_to_back", "paced"):
            a, d = r[mode]["without_purge"], r[mode]["during_purge"]
            lines.append(
                f"| {backend} | {mode.replace('_', ' ')} | {r[mode]['rows_purged_per_s']:,.0f} "
                f"| {a['creates_per_s']:,.0f} → {d['creates_per_s']:,.0f} "
                f"| {a['finishes_per_s']:,.0f} → {d['finishes_per_s']:,.0f} "
                f"| {a['create_p99_ms']:.1f} → {d['create_p99_ms']:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000,
                        help="expired tasks to fill (each with one log row)")
    parser.add_argument("--baseline", type=float, default=5.0,
                        help="seconds of hot path alone before the purge")
    parser.add_argument("--only", choices=BACKENDS, action="append")
    parser.add_argument("--purge", metavar="URL", help=argparse.SUPPRESS)  # the child's part
    parser.add_argument("--paced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.purge:
        asyncio.run(purge_here(args.purge, args.paced))
        return
    results = {b: asyncio.run(run_one(b, args.tasks, args.baseline)) for b in args.only or BACKENDS}
    print(table(results))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {"when": stamp, "machine": platform.platform(), "tasks": args.tasks,
              "figures": results}
    out = BENCH / "results" / f"retention-{stamp}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {out.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
