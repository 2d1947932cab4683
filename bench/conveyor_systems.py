"""Conveyor as a ``peer_figs.System``, in the deployments users run: distributed (``conveyor
api`` + ``conveyor scheduler`` up first, ``conveyor worker`` processes launched by the figure;
MariaDB or PostgreSQL, Redis or etcd) and standalone (one process on SQLite). Task bodies are
``peers/conveyor_app.py``'s, submitted over HTTP by ``peers/driver.py`` in Conveyor's own
virtualenv, exactly as the peers' are."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from conveyor_figs import APP_ARGS, Cluster
from harness import (
    SERVERS,
    VENV_BIN,
    BenchError,
    Proc,
    Procs,
    Servers,
    etcd_writes,
    free_port,
    http_ok,
    wait_until,
)
from peer_figs import driver_env

CONVEYOR = VENV_BIN / "conveyor"


class ConveyorSystem:
    """API + 1 scheduler up before the figure; ``workers`` worker processes of ``capacity``
    launched by it. ``api_processes`` > 1 shares the API's port (``--reuse-port``)."""

    app = "conveyor"
    python = VENV_BIN / "python"

    def __init__(self, procs: Procs, db: str = "mariadb", coordination: str = "redis",
                 workers: int = 2, capacity: int = 100, api_processes: int = 1,
                 redis_url: str | None = None, servers: Servers = SERVERS) -> None:
        self.procs, self.db, self.coordination = procs, db, coordination
        self.redis_url, self.servers = redis_url, servers
        self.workers, self.capacity, self.api_processes = workers, capacity, api_processes
        store = {"mariadb": "MariaDB", "postgres": "PostgreSQL"}[db]
        self.name = f"conveyor distributed ({store}+{coordination})"
        self.cluster: Cluster | None = None
        self.probe: dict[str, str] = {}

    @contextlib.asynccontextmanager
    async def up(self, probe: dict[str, str]) -> AsyncIterator[None]:
        self.probe = probe
        where = {"redis_url": self.redis_url} if self.redis_url else {}
        async with Cluster(self.procs, coordination=self.coordination, db=self.db,
                           servers=self.servers, **where) as cluster:
            await cluster.api(self.api_processes)
            cluster.scheduler()
            await cluster.wait_ready(0)
            self.cluster = cluster
            try:
                yield
            finally:
                self.cluster = None

    def _cluster(self) -> Cluster:
        if self.cluster is None:
            raise BenchError(f"{self.name} is not up")
        return self.cluster

    def env(self) -> dict[str, str]:
        return driver_env(self.probe, BENCH_CONVEYOR_URL=self._cluster().url)

    def start_workers(self, latency: bool) -> list[Proc]:
        return [self._cluster().worker(self.capacity, self.probe) for _ in range(self.workers)]

    async def started(self, workers: list[Proc]) -> None:
        return None

    async def before_drain(self) -> None:
        return None

    async def counters(self) -> dict[str, float]:
        return {"etcd_writes": await etcd_writes()} if self.coordination == "etcd" else {}


class StandaloneSystem:
    """``conveyor standalone`` on a SQLite file in a temp directory. Its worker is in the
    process that takes the tasks, so a drain cannot launch it after the queue is filled: the
    queue is paused while it fills, and the drain's "launch" is the resume."""

    app = "conveyor"
    python = VENV_BIN / "python"
    name = "conveyor standalone (SQLite)"

    def __init__(self, procs: Procs, capacity: int = 100) -> None:
        self.procs, self.capacity = procs, capacity
        self.url = ""
        self.probe: dict[str, str] = {}
        self.paused = False

    @contextlib.asynccontextmanager
    async def up(self, probe: dict[str, str]) -> AsyncIterator[None]:
        self.probe = probe
        home = Path(tempfile.mkdtemp(prefix="conveyor-bench-sa-"))
        port = free_port()
        env = {k: v for k, v in driver_env(probe).items() if not k.startswith("CONVEYOR_")}
        env["CONVEYOR_LOG_LEVEL"] = "WARNING"
        proc = self.procs.start("standalone", [
            CONVEYOR, "standalone", "--db", home / "bench.db", "--port", str(port),
            "--capacity", str(self.capacity), *APP_ARGS], env, cwd=home)
        self.url = f"http://127.0.0.1:{port}"
        try:
            async def ready() -> bool:
                return await http_ok(f"{self.url}/readyz")

            await wait_until(ready, 30, "standalone", procs=[proc])
            yield
        finally:
            self.procs.stop([proc])
            shutil.rmtree(home, ignore_errors=True)

    def env(self) -> dict[str, str]:
        return driver_env(self.probe, BENCH_CONVEYOR_URL=self.url)

    def start_workers(self, latency: bool) -> list[Proc]:
        return []

    async def _queue(self, action: str) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            (await client.post(f"/api/v1/queues/normal/{action}")).raise_for_status()

    async def started(self, workers: list[Proc]) -> None:
        if self.paused:
            await self._queue("resume")
            self.paused = False

    async def before_drain(self) -> None:
        await self._queue("pause")
        self.paused = True

    async def counters(self) -> dict[str, float]:
        return {}
