"""Conveyor's flat-cost figures (issue 17).

- ``counts``: SQL statements and Redis commands per task over a drain of N tasks, created
  through the batch API while the workers already run. Redis commands come from a private
  ``redis-server`` (``INFO commandstats``), MariaDB's statements from a private ``mariadbd``
  (``SHOW GLOBAL STATUS``: ``Questions`` and the ``Com_*`` counters), so other users of the
  shared servers are not counted; PostgreSQL's from ``pg_stat_database`` of the run's own
  database (transactions and rows; ``pg_stat_statements`` is not loaded on this server). An
  idle window first gives the background rate (heartbeats, polls), subtracted per second.
- ``scale``: one scheduler dispatching to 1-100 simulated workers (``sim_workers.py``,
  capacity 10): created → claimed by a worker (``started_at - created_at``), p50 / p99.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import redis.asyncio as aredis

from conveyor_figs import Cluster
from conveyor_systems import ConveyorSystem
from harness import (
    BENCH,
    PORT_BASE,
    SERVERS,
    VENV_BIN,
    BenchError,
    Procs,
    Servers,
    percentile,
    pg,
    sql,
    wait_until,
)
from peer_figs import PeerRedis, driver
from peers._http import AsyncPool

REDIS_PORT, MARIADB_PORT = PORT_BASE + 90, PORT_BASE + 91
IDLE_S = 3.0
DML = ("select", "insert", "update", "delete", "insert_select", "update_multi",
       "delete_multi", "replace", "begin", "commit", "rollback")


@contextlib.asynccontextmanager
async def private_servers(procs: Procs) -> AsyncIterator[Servers]:
    """A redis-server and a mariadbd of the bench's own (temp dirs, ports of its range)."""
    home = Path(tempfile.mkdtemp(prefix="conveyor-bench-srv-"))
    try:
        redis = procs.start("private-redis", [
            "redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", home])
        data = home / "mariadb"
        await asyncio.to_thread(subprocess.run, [
            "mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
            "--skip-test-db"], check=True, capture_output=True, timeout=120)
        mariadb = procs.start("private-mariadb", [
            "mariadbd", "--no-defaults", f"--datadir={data}", f"--port={MARIADB_PORT}",
            f"--socket={home / 'mariadb.sock'}", "--bind-address=127.0.0.1", "--user=root",
            "--skip-grant-tables", "--skip-log-bin", "--innodb-buffer-pool-size=256M"])

        async def up() -> bool:
            try:
                await sql("SELECT 1", port=MARIADB_PORT)
                client = aredis.Redis(port=REDIS_PORT)
                await client.ping()
                await client.aclose()
            except Exception:  # not listening yet
                return False
            return True

        await wait_until(up, 60, "the private Redis and MariaDB", every=0.3,
                         procs=[redis, mariadb])
        try:
            yield Servers(mariadb_port=MARIADB_PORT)
        finally:
            procs.stop([redis, mariadb], grace=10)
    finally:
        shutil.rmtree(home, ignore_errors=True)


async def _redis_calls() -> dict[str, int]:
    client = aredis.Redis(port=REDIS_PORT)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()
            if k not in ("cmdstat_info",)}


async def _sql_counts(kind: str, servers: Servers, db: str) -> dict[str, int]:
    if kind == "postgres":
        rows = await pg("SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, "
                        "tup_returned FROM pg_stat_database WHERE datname = $1", args=[db])
        names = ("transactions", "rows_inserted", "rows_updated", "rows_deleted",
                 "rows_returned")
        return dict(zip(names, (int(x) for x in rows[0]), strict=True))
    rows = await sql("SHOW GLOBAL STATUS WHERE Variable_name = 'Questions' OR "
                     "Variable_name LIKE 'Com\\_%'", port=servers.mariadb_port)
    wanted = {"questions": "statements", **{f"com_{c}": c for c in DML}}
    return {wanted[n.lower()]: int(v) for n, v in rows if n.lower() in wanted}


async def _snapshot(kind: str, servers: Servers, db: str) -> dict[str, int]:
    if kind == "postgres":
        await asyncio.sleep(1.2)  # backends report their statistics at most once a second
    return {**{f"sql_{k}": v for k, v in (await _sql_counts(kind, servers, db)).items()},
            **{f"redis_{k}": v for k, v in (await _redis_calls()).items()}}


async def counts(procs: Procs, redis: PeerRedis, kind: str, n: int) -> dict[str, float]:
    """Statements and commands per task over the creation and drain of ``n`` no-ops."""
    async with private_servers(procs) as servers:
        system = ConveyorSystem(procs, kind, redis_url=f"redis://127.0.0.1:{REDIS_PORT}/0",
                                servers=servers)
        key = f"benchprobe:{uuid.uuid4().hex[:8]}"
        probe = {"BENCH_REDIS_URL": redis.url, "BENCH_PROBE_KEY": key,
                 "BENCH_PROBE_TARGET": str(n)}
        async with system.up(probe):
            cluster = system.cluster
            assert cluster is not None
            workers = system.start_workers(latency=False)
            try:
                await cluster.wait_ready(len(workers))
                await asyncio.sleep(1.0)
                idle0, t0 = await _snapshot(kind, servers, cluster.db), time.monotonic()
                await asyncio.sleep(IDLE_S)
                idle1, t1 = await _snapshot(kind, servers, cluster.db), time.monotonic()
                await driver(system, ["enqueue", "--kind", "noop", "--count", str(n)], 600)

                async def drained() -> bool:
                    return int(await redis.client.get(f"{key}:n") or 0) >= n

                await wait_until(drained, 600, f"{n} tasks counted", every=0.1,
                                 procs=workers)
                run1, t2 = await _snapshot(kind, servers, cluster.db), time.monotonic()
            finally:
                procs.stop(workers)
                await redis.flush()
    idle_rate = {k: (idle1.get(k, 0) - idle0.get(k, 0)) / (t1 - t0) for k in idle1}
    out: dict[str, float] = {"tasks": float(n), "seconds": t2 - t1}
    for k in sorted(set(run1) | set(idle1)):
        per = (run1.get(k, 0) - idle1.get(k, 0) - idle_rate.get(k, 0.0) * (t2 - t1)) / n
        if abs(per) >= 0.005:
            out[f"{k}_per_task"] = per
    out["sql_idle_per_s"] = sum(v for k, v in idle_rate.items() if k in (
        "sql_statements", "sql_transactions"))
    out["redis_idle_per_s"] = sum(v for k, v in idle_rate.items() if k.startswith("redis_"))
    out["redis_commands_per_task"] = sum(v for k, v in out.items()
                                         if k.startswith("redis_") and k.endswith("_per_task"))
    return out


SIM = BENCH / "sim_workers.py"
FEED_S, FEED_EVERY, FEED_BATCH = 8.0, 0.1, 20  # 200 tasks/s


async def scale(procs: Procs, simulated: int, per_process: int = 25) -> dict[str, float]:
    """``simulated`` workers of capacity 10 (``per_process`` to a process) under one
    scheduler; a steady 200 tasks/s of ``echo`` in batches of 20: created → claimed."""
    async with Cluster(procs, {"CONVEYOR_WORKER__CAPACITY": "10"}, servers=SERVERS) as cluster:
        await cluster.api()
        cluster.scheduler()
        groups = [min(per_process, simulated - i) for i in range(0, simulated, per_process)]
        for size in groups:
            cluster.members.append(procs.start("sim-workers", [
                VENV_BIN / "python", SIM, "--workers", str(size)], cluster.env, cwd=cluster.cwd))
        await cluster.wait_ready(simulated)
        sent = 0
        pool, batch = AsyncPool(cluster.url), {"tasks": [{"task_type": "echo"}] * FEED_BATCH}
        began = time.monotonic()
        while time.monotonic() - began < FEED_S:
            at = time.monotonic()
            if await pool.post("/api/v1/tasks/batch", batch) != 201:
                raise BenchError("scale: a batch was refused")
            sent += FEED_BATCH
            await asyncio.sleep(max(0.0, at + FEED_EVERY - time.monotonic()))
        await cluster.wait_status("SUCCESS", sent, 120)
        rows = await sql("SELECT started_at - created_at FROM task", cluster.db)
    ms = [float(r[0]) * 1000 for r in rows if r[0] is not None]
    if not ms or any(math.isnan(x) for x in ms):
        raise BenchError("scale: no start times read")
    return {"dispatch_p50_ms": percentile(ms, 50), "dispatch_p99_ms": percentile(ms, 99),
            "dispatch_max_ms": max(ms), "tasks": float(len(ms)), "workers": float(simulated)}
