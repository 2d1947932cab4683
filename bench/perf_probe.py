"""Issue 17's four figures on one small distributed cluster (MariaDB + Redis), quickly:

    .venv/bin/python bench/perf_probe.py [--drain 5000] [--samples 200] [--single 2000]

- start: the queue is filled first, then two workers (capacity 100) are launched; seconds from
  the launch to the first ``finished_at``, and the drain rate after that first finish;
- latency: submit -> ``started_at``, one echo task every 20 ms on the idle cluster;
- create: one client, one request at a time, one API process.

The machine is shared, so wall-clock figures swing with the load; each figure also reports
the CPU each process spent per task (``/proc/<pid>/stat``), which the load hardly moves: on a
saturated machine the throughput is what the cores divide by it.

A probe for before/after comparisons while optimising, not the harness (``bench/run.py``):
one run, no peers, its own database (``perf_*``), key prefix (``perf:``) and port (21500).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx

import conveyor_figs as cf
from harness import Procs, percentile, sql, stop_everything, wait_until
from peers._http import post

PORT = int(os.environ.get("BENCH_PORT_BASE", "21500"))  # one port: the API
HOST = f"127.0.0.1:{PORT}"
TICK = os.sysconf("SC_CLK_TCK")
PROFILE_ENV: dict[str, str] = {}


def cpu_seconds(procs: Sequence[cf.Proc]) -> float:
    """User + system CPU of these processes and their living children (task processes) so
    far."""
    return sum(_cpu_tree(proc.pid) for proc in procs) / TICK


def _cpu_tree(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        kids = [int(k) for t in Path(f"/proc/{pid}/task").iterdir()
                for k in (t / "children").read_text().split()]
    except FileNotFoundError:  # ended meanwhile
        return 0
    return int(fields[11]) + int(fields[12]) + sum(_cpu_tree(k) for k in kids)


class PerfCluster(cf.Cluster):
    """A bench cluster under this probe's own database, prefix and port."""

    def __init__(self, procs: Procs) -> None:
        super().__init__(procs)
        tag = uuid.uuid4().hex[:8]
        self.db = f"perf_{tag}"
        self.prefix = f"perf:{tag}:"
        self.env["CONVEYOR_DATABASE_URL"] = self.servers.url(self.kind, self.db)
        self.env["CONVEYOR_REDIS_PREFIX"] = self.prefix
        # bench.count's counter under the cluster's own prefix and Redis DB, so it goes with
        # the cluster's keys at the end (not into the peers' DB 9, which the bench wants empty)
        self.env["BENCH_REDIS_URL"] = self.redis_url
        self.env["BENCH_PROBE_KEY"] = f"{self.prefix}probe"
        self.env.update(PROFILE_ENV)

    async def api(self, processes: int = 1) -> cf.Proc:
        self.url = f"http://127.0.0.1:{PORT}"
        proc = self._start("api", ["api", "--port", str(PORT), *cf.APP_ARGS], None)

        async def ready() -> bool:
            return await cf.http_ok(f"{self.url}/readyz")

        await wait_until(ready, 30, "the API", procs=[proc])
        return proc


async def submit_spaced(url: str, samples: int, gap: float) -> list[tuple[str, float]]:
    """One echo task every ``gap`` seconds (each alone on an idle system): (id, sent at)."""
    sent: list[tuple[str, float]] = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        for _ in range(samples):
            at = time.time()
            response = await client.post("/api/v1/tasks", json={"task_type": "echo"})
            response.raise_for_status()
            sent.append((response.json()["task_id"], at))
            await asyncio.sleep(max(0.0, at + gap - time.time()))
    return sent


async def start_and_drain(procs: Procs, count: int) -> dict[str, float]:
    async with PerfCluster(procs) as cluster:
        api = await cluster.api()
        scheduler = cluster.scheduler()

        async def leader() -> bool:
            return bool((await cluster.get("/api/v1/scheduler")).get("leader"))

        await wait_until(leader, 30, "a leader", procs=cluster.members)
        # The bench's own body (an async INCR on the worker's loop), as bench/run.py drains.
        await cluster.insert("bench.count", {}, count)
        before = cpu_seconds([api]), cpu_seconds([scheduler])
        launched = time.time()
        workers = [cluster.worker(100), cluster.worker(100)]

        async def one_finished() -> bool:
            return bool(await sql("SELECT 1 FROM task WHERE status = 'SUCCESS' LIMIT 1",
                                  cluster.db))

        await wait_until(one_finished, 120, "a first task", every=0.02, procs=workers)
        first_cpu = cpu_seconds(workers) / len(workers)
        await cluster.wait_status("SUCCESS", count, 600)
        spent = (cpu_seconds([api]) - before[0], cpu_seconds([scheduler]) - before[1],
                 cpu_seconds(workers))
        rows = await sql("SELECT MIN(finished_at), MAX(finished_at) FROM task", cluster.db)
        first, last = float(rows[0][0]), float(rows[0][1])
        return {"launch_to_first_s": first - launched,
                "worker_cpu_s_until_first": first_cpu,
                "drain_after_first_per_s": (count - 1) / (last - first),
                "drain_with_startup_per_s": count / (last - launched),
                "cpu_us_per_task_api": spent[0] / count * 1e6,
                "cpu_us_per_task_scheduler": spent[1] / count * 1e6,
                "cpu_us_per_task_workers": spent[2] / count * 1e6}


async def latency(procs: Procs, samples: int) -> dict[str, float]:
    async with PerfCluster(procs) as cluster:
        await cluster.api()
        cluster.scheduler()
        cluster.worker(10)
        await cluster.wait_ready(1)
        sent = await submit_spaced(cluster.url, samples + 20, 0.02)
        await cluster.wait_status("SUCCESS", len(sent), 60)
        rows = await sql("SELECT id, started_at FROM task", cluster.db)
        started = {r[0]: float(r[1]) for r in rows}
        ms = [(started[tid] - at) * 1000 for tid, at in sent[20:]]
        return {"p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99)}


async def create(procs: Procs, single: int) -> dict[str, float]:
    """One connection, one request at a time; the API's CPU per request beside the rate."""
    async with PerfCluster(procs) as cluster:
        api = await cluster.api()
        body = {"task_type": "noop", "payload": {}}
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
        try:
            for _ in range(200):  # warm-up: caches, the pool
                await post(reader, writer, HOST, "/api/v1/tasks", body)
            cpu, began = cpu_seconds([api]), time.perf_counter()
            for _ in range(single):
                if await post(reader, writer, HOST, "/api/v1/tasks", body) != 201:
                    raise cf.BenchError("a create failed")
            wall = time.perf_counter() - began
            spent = cpu_seconds([api]) - cpu
        finally:
            writer.close()
        return {"per_s": single / wall, "api_cpu_us_per_request": spent / single * 1e6}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drain", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--single", type=int, default=2000)
    parser.add_argument("--only", choices=("start", "latency", "create"))
    args = parser.parse_args()
    procs = Procs(Path("/tmp/perf-probe-logs"))
    try:
        if args.only in (None, "start"):
            print("start+drain", await start_and_drain(procs, args.drain), flush=True)
        if args.only in (None, "latency"):
            print("latency", await latency(procs, args.samples), flush=True)
        if args.only in (None, "create"):
            print("create", await create(procs, args.single), flush=True)
    finally:
        stop_everything()


if __name__ == "__main__":
    asyncio.run(main())
