"""Conveyor's cluster (``conveyor api`` / ``scheduler`` / ``worker`` on MariaDB or PostgreSQL
and Redis or etcd, one fresh database and key prefix each) and the figures only Conveyor has:
concurrency of 1 s sleepers and recovery after kill -9, timestamps read from SQL after a run.
The figures every system shares are in ``peer_figs.py``."""

from __future__ import annotations

import asyncio
import compileall
import functools
import itertools
import os
import re
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

import conveyor
from conveyor.config import SchedulerSettings
from harness import (
    BENCH,
    DB_PREFIX,
    ETCD_URL,
    REDIS_DB,
    REDIS_HOST,
    REDIS_PORT,
    SERVERS,
    VENV_BIN,
    BenchError,
    Proc,
    Procs,
    Servers,
    etcd_delete_prefix,
    free_port,
    http_ok,
    redis_delete_prefix,
    sql,
    wait_until,
)

CONVEYOR = VENV_BIN / "conveyor"
# The bench's task bodies (peers/conveyor_app.py) beside the built-in ones.
APP_ARGS = ["--app", "peers.conveyor_app:app", "--app-dir", str(BENCH)]


@functools.cache
def compile_sources() -> None:
    """Byte-compile Conveyor's own modules, as installing it does (``pip install .``, the
    Dockerfile), and as the peers' wheels are. The editable install under the environment's
    PYTHONDONTWRITEBYTECODE would compile every module from source at each process start:
    ~0.1 s of a worker's launch that no installed system pays."""
    compileall.compile_dir(Path(conveyor.__file__).parent, quiet=1)


class Cluster:
    """One distributed Conveyor: a fresh MariaDB database and key prefix on Redis or etcd
    (``coordination``), and the processes started on them. ``close`` kills them and drops
    both."""

    def __init__(self, procs: Procs, settings: Mapping[str, str] | None = None,
                 coordination: str = "redis", db: str = "mariadb",
                 redis_url: str = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
                 servers: Servers = SERVERS) -> None:
        compile_sources()
        tag = uuid.uuid4().hex[:10]
        self.procs = procs
        self.kind, self.servers, self.redis_url = db, servers, redis_url
        self.db = f"{DB_PREFIX}{tag}"
        self.prefix = f"bench:{tag}:"
        self.cwd = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))  # no stray conveyor.yaml
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        self.env.update(
            CONVEYOR_DATABASE_URL=servers.url(db, self.db),
            CONVEYOR_REDIS_URL=redis_url,
            CONVEYOR_REDIS_PREFIX=self.prefix,
            CONVEYOR_LOG_LEVEL="WARNING",
            CONVEYOR_AUTH_REQUIRED="false",  # loopback only; keys are not what is measured
            **(settings or {}),
        )
        self.coordination = coordination
        if coordination == "etcd":  # coordination_url wins over redis_url
            self.env["CONVEYOR_COORDINATION_URL"] = ETCD_URL
        self.members: list[Proc] = []
        self.url = ""

    async def __aenter__(self) -> Cluster:
        await self.servers.create(self.kind, self.db)
        proc = await asyncio.create_subprocess_exec(
            str(CONVEYOR), "migrate", env=self.env, cwd=self.cwd,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        if proc.returncode != 0:
            raise BenchError(f"conveyor migrate failed: {err.decode()[-1500:]}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.procs.stop(self.members)
        try:
            await self.servers.drop(self.kind, self.db)
            if self.coordination == "etcd":
                await etcd_delete_prefix(self.prefix)
            else:
                await redis_delete_prefix(self.prefix, self.redis_url)
        finally:
            shutil.rmtree(self.cwd, ignore_errors=True)

    def _start(self, name: str, args: list[str], extra: Mapping[str, str] | None) -> Proc:
        env = {**self.env, **(extra or {})}
        proc = self.procs.start(name, [CONVEYOR, *args], env, cwd=self.cwd)
        self.members.append(proc)
        return proc

    def kill(self, proc: Proc) -> None:
        """kill -9 one member; the others are still watched."""
        self.procs.kill(proc, signal.SIGKILL)
        self.members.remove(proc)

    async def api(self, processes: int = 1) -> Proc:
        """``processes`` > 1 starts that many API processes on one port (``--reuse-port``),
        the documented way to give the API every core."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        args = ["api", "--port", str(port), *APP_ARGS] + (
            ["--reuse-port"] if processes > 1 else [])
        procs = [self._start("api", args, None) for _ in range(processes)]

        async def ready() -> bool:
            return await http_ok(f"{self.url}/readyz")

        await wait_until(ready, 30, "the API", procs=procs)
        await asyncio.sleep(3.0 if processes > 1 else 0.0)  # let every process bind
        return procs[0]

    def scheduler(self, extra: Mapping[str, str] | None = None) -> Proc:
        return self._start("scheduler", ["scheduler"], extra)

    def worker(self, capacity: int, extra: Mapping[str, str] | None = None) -> Proc:
        return self._start("worker", ["worker", "--capacity", str(capacity), *APP_ARGS], extra)

    async def get(self, path: str) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            response = await client.get(path)
            response.raise_for_status()
            return response.json()

    async def post(self, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            response = await client.post(path, json=body)
            response.raise_for_status()
            return response.json()

    async def wait_ready(self, workers: int) -> None:
        """A leader elected and ``workers`` workers registered."""

        async def ready() -> bool:
            leader = (await self.get("/api/v1/scheduler")).get("leader")
            live = (await self.get("/api/v1/workers"))["workers"]
            return bool(leader) and len(live) >= workers

        await wait_until(ready, 60, "scheduler leader and workers", every=0.2,
                         procs=self.members)

    async def leader_pid(self) -> int:
        leader = (await self.get("/api/v1/scheduler"))["leader"]
        match = re.match(r"scheduler-.*-(\d+)-[0-9a-f]+$", leader or "")
        if not match:
            raise BenchError(f"cannot read a pid from leader id {leader!r}")
        return int(match.group(1))

    async def insert(self, task_type: str, payload: dict[str, Any], count: int) -> None:
        """Create ``count`` tasks through the batch endpoint, 1,000 per request."""
        async with httpx.AsyncClient(base_url=self.url, timeout=120) as client:
            for start in range(0, count, 1000):
                size = min(1000, count - start)
                body = {"tasks": [{"task_type": task_type, "payload": payload}] * size}
                (await client.post("/api/v1/tasks/batch", json=body)).raise_for_status()

    async def count(self, status: str) -> int:
        rows = await self.servers.query(
            self.kind, self.db, f"SELECT COUNT(*) FROM task WHERE status = '{status}'")
        return int(rows[0][0])

    async def wait_status(self, status: str, count: int, timeout: float) -> None:
        async def reached() -> bool:
            return await self.count(status) >= count

        await wait_until(reached, timeout, f"{count} tasks {status}", every=0.25,
                         procs=self.members)

    async def span(self) -> tuple[float, float, int]:
        """(first started_at, last finished_at, finished tasks) over the whole table."""
        rows = await self.servers.query(
            self.kind, self.db,
            "SELECT MIN(started_at), MAX(finished_at), COUNT(finished_at) FROM task")
        first, last, n = rows[0]
        return float(first), float(last), int(n)


# -- figure 4: 10,000 concurrent sleeping tasks ---------------------------------------------


async def concurrency(procs: Procs, count: int, seconds: float) -> dict[str, float]:
    """``count`` tasks sleeping ``seconds`` each on one worker process of capacity ``count``,
    and that process's peak resident memory while they ran (sampled every 50 ms)."""
    async with Cluster(procs) as cluster:
        await cluster.api()
        cluster.scheduler()
        worker = cluster.worker(count)
        await cluster.wait_ready(1)
        await cluster.post("/api/v1/queues/normal/pause")
        await cluster.insert("sleep", {"seconds": seconds}, count)
        idle_rss = _rss_mb(worker.pid)
        peak = [idle_rss]

        async def sample() -> None:
            while True:
                peak[0] = max(peak[0], _rss_mb(worker.pid))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        try:
            await cluster.post("/api/v1/queues/normal/resume")
            resumed = time.time()
            await cluster.wait_status("SUCCESS", count, 120 + count * seconds / 100)
        finally:
            sampler.cancel()
        first, last, _ = await cluster.span()
        return {"wall_s": last - first, "resume_to_last_s": last - resumed,
                "tasks_per_s": count / (last - first), "worker_peak_rss_mb": peak[0],
                "worker_idle_rss_mb": idle_rss}


def _rss_mb(pid: int) -> float:
    """VmRSS of one process (its task processes are not counted), MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# -- figure 5: leader failover and worker-crash recovery ------------------------------------

DEFAULT_LEASE = SchedulerSettings().leader_lock_ttl


async def _steady_submit(url: str, stop: asyncio.Event, every: float) -> int:
    sent = 0
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while not stop.is_set():
            at = time.monotonic()
            (await client.post("/api/v1/tasks", json={"task_type": "echo"})).raise_for_status()
            sent += 1
            await asyncio.sleep(max(0.0, at + every - time.monotonic()))
    return sent


async def failover(
    procs: Procs, schedulers: int = 3, lease: float | None = 1.0, coordination: str = "redis"
) -> dict[str, float]:
    """kill -9 the leader while ~100 tasks/s arrive: seconds until a task created after the kill
    starts, and the longest pause between consecutive starts. ``lease=None``: the defaults."""
    lease_env = {} if lease is None else {
        "CONVEYOR_SCHEDULER__LEADER_LOCK_TTL": str(lease),
        "CONVEYOR_SCHEDULER__LEADER_RENEW_INTERVAL": str(round(lease / 3, 3))}
    async with Cluster(procs, lease_env, coordination) as cluster:
        await cluster.api()
        candidates = [cluster.scheduler() for _ in range(schedulers)]
        cluster.worker(50)
        await cluster.wait_ready(1)
        stop = asyncio.Event()
        feeder = asyncio.create_task(_steady_submit(cluster.url, stop, 0.01))
        try:
            await asyncio.sleep(2.0)
            pid = await cluster.leader_pid()
            victim = next((p for p in candidates if p.pid == pid), None)
            if victim is None:
                raise BenchError(f"leader pid {pid} is not one of the bench's schedulers")
            killed = time.time()
            cluster.kill(victim)
            await asyncio.sleep(max(6.0, (lease or DEFAULT_LEASE) * 3))
        finally:
            stop.set()
            sent = await asyncio.wait_for(feeder, 30)
        await cluster.wait_status("SUCCESS", sent, 60)
        new_pid = await cluster.leader_pid()
        rows = await sql("SELECT created_at, started_at FROM task ORDER BY started_at",
                         cluster.db)
    starts = [float(r[1]) for r in rows]
    after = [float(r[1]) for r in rows if float(r[0]) > killed]
    window = [s for s in starts if killed - 1.0 <= s <= killed + 30]
    gaps = [b - a for a, b in itertools.pairwise(window)]
    if new_pid == pid or not after:
        raise BenchError("no new leader took over")
    return {"failover_s": min(after) - killed, "max_start_gap_s": max(gaps, default=0.0),
            "tasks": float(len(starts))}


async def worker_recovery(
    procs: Procs, ttl: float | None = 3.0, tasks: int = 8
) -> dict[str, float]:
    """kill -9 a worker running sleep tasks (heartbeat TTL ``ttl``; None: the defaults): seconds
    until the last of its tasks started again on the other worker; every task must still
    succeed."""
    hb = {} if ttl is None else {"CONVEYOR_WORKER__HEARTBEAT_INTERVAL": str(ttl / 3),
                                 "CONVEYOR_WORKER__HEARTBEAT_TTL": str(ttl)}
    async with Cluster(procs, hb) as cluster:
        await cluster.api()
        cluster.scheduler()
        victim = cluster.worker(10)
        cluster.worker(10)
        await cluster.wait_ready(2)
        await cluster.insert("sleep", {"seconds": 6}, tasks)
        like = f"worker-%-{victim.pid}-%"

        async def held() -> list[str]:
            rows = await sql("SELECT id FROM task WHERE status = 'PROCESSING' AND worker_id "
                             "LIKE %s", cluster.db, [like])
            return [r[0] for r in rows]

        ids: list[str] = await wait_until(held, 30, "the victim to run tasks", every=0.05)
        await asyncio.sleep(0.2)  # let the rest of its share start too
        ids = await held()
        killed = time.time()
        cluster.kill(victim)

        async def restarted() -> float | None:
            marks = ", ".join(["%s"] * len(ids))
            rows = await sql(f"SELECT started_at FROM task WHERE id IN ({marks}) AND started_at "
                             "> %s AND worker_id NOT LIKE %s", cluster.db, [*ids, killed, like])
            return max(float(r[0]) for r in rows) if len(rows) == len(ids) else None

        back: float = await wait_until(restarted, 60, "the victim's tasks to restart", every=0.1)
        await cluster.wait_status("SUCCESS", tasks, 60)
        rows = await sql("SELECT MAX(attempt) FROM task", cluster.db)
    return {"recovery_s": back - killed, "tasks_moved": float(len(ids)),
            "max_attempt": float(rows[0][0])}
