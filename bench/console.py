"""The console's load check (issue 15): with ``--rows`` tasks in the store (MariaDB by default),
how long the overview, its live fragment and the first page of task search take to answer.

    .venv/bin/python bench/console.py                      # 1,000,000 tasks on MariaDB
    .venv/bin/python bench/console.py --rows 100000 --db postgres

A throw-away database is filled with finished tasks (one log row each, the retention bench's
fill); the real API app (``create_app``) is called in-process through httpx, each page ``--repeat``
times a third of a second apart, as a polling browser would. The overview's numbers come from a
shared snapshot: the first request waits for its read (``cold``), later ones are served from it
while a background read renews it (``snapshot_read_ms``: how long that read takes). Prints
median and worst per page and writes ``bench/results/console-<ts>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # the shared fill lives with the tests that use it

import httpx  # noqa: E402
from tests.support.databases import fresh_database  # noqa: E402
from tests.support.purge_load import fill  # noqa: E402

from conveyor.api.app import create_app  # noqa: E402
from conveyor.bootstrap import build  # noqa: E402
from conveyor.config import load_settings  # noqa: E402
from conveyor.console.snapshot import Snapshots  # noqa: E402

PAGES = ("/ui", "/ui/overview/live", "/ui/tasks", "/ui/tasks?status=SUCCESS",
         "/ui/tasks?type=echo", "/ui/queues")
TARGET_MS = 500.0


async def measure(url: str, rows: int, repeat: int) -> dict[str, Any]:
    parts = await build(load_settings(database_url=url), standalone=True)
    try:
        await parts.store.migrate()
        began = time.monotonic()
        await fill(parts.store, rows, time.time(), keep=0.0)  # type: ignore[arg-type]
        filled = time.monotonic() - began
        app = create_app(parts.service)
        snapshots: Snapshots = app.state.console_snapshots
        timings: dict[str, list[float]] = {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                     base_url="http://bench") as http:
            cold = await timed(http, "/ui")
            for path in PAGES:
                for _ in range(repeat):
                    timings.setdefault(path, []).append(await timed(http, path))
                    await asyncio.sleep(0.33)
        await snapshots.idle()
        return {"rows": rows, "fill_seconds": filled, "cold_overview_ms": cold,
                "snapshot_read_ms": 1000 * snapshots._took[None], "pages": {
                    path: {"median_ms": statistics.median(ms), "max_ms": max(ms)}
                    for path, ms in timings.items()}}
    finally:
        await parts.close()


async def timed(http: httpx.AsyncClient, path: str) -> float:
    start = time.perf_counter()
    answer = await http.get(path)
    assert answer.status_code == 200, (path, answer.text[:300])
    return 1000 * (time.perf_counter() - start)


async def run(backend: str, rows: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database(backend, Path(tmp)) as url:
            return await measure(url, rows, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("mariadb", "postgres", "sqlite"), default="mariadb")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(run(args.db, args.rows, args.repeat))
    result["db"] = args.db
    print(f"{args.rows:,} tasks on {args.db} (filled in {result['fill_seconds']:.0f} s); "
          f"overview cold {result['cold_overview_ms']:.0f} ms, snapshot read "
          f"{result['snapshot_read_ms']:.0f} ms")
    print(f"{'page':32} {'median ms':>10} {'max ms':>8}  under {TARGET_MS:.0f} ms")
    for path, t in result["pages"].items():
        ok = "yes" if t["median_ms"] < TARGET_MS else "NO"
        print(f"{path:32} {t['median_ms']:10.1f} {t['max_ms']:8.1f}  {ok}")
    out = BENCH / "results" / f"console-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {out.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
