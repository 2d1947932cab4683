"""A small harness for multi-process tests: real ``conveyor`` processes on a throw-away database
and a private Redis key prefix (or a private ``redis-server``).

Everything a test starts is killed when its ``cluster(...)`` block ends, with bounded waits;
when the block ends with an exception the tails of every process log are printed first.
Tests are plain synchronous functions: SQL checks run on a private event loop
(``Database.rows``), so no test needs an async driver of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from conveyor.client import Client
from tests.support.databases import fresh_database
from tests.support.processes import conveyor_command, free_port

T = TypeVar("T")

SHARED_REDIS = os.environ.get("CONVEYOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# Every cluster: the API is on loopback and private to the test; keys have tests of their own.
BASE_ENV = {
    "CONVEYOR_LOG_LEVEL": "INFO",
    "CONVEYOR_AUTH_REQUIRED": "false",
}

# Seconds instead of the production defaults, so leases, heartbeats and sweeps act quickly
# (``cluster(..., fast=False)`` runs the defaults, for the bounds promised with them).
FAST_ENV = {
    "CONVEYOR_SCHEDULER__LEADER_LOCK_TTL": "1",
    "CONVEYOR_SCHEDULER__LEADER_RENEW_INTERVAL": "0.3",
    "CONVEYOR_SCHEDULER__SCAN_INTERVAL": "0.2",
    "CONVEYOR_SCHEDULER__TIMEOUT_CHECK_INTERVAL": "0.5",
    "CONVEYOR_SCHEDULER__TIMEOUT_GRACE": "0.5",
    "CONVEYOR_SCHEDULER__ORPHAN_SWEEP_INTERVAL": "1",
    "CONVEYOR_SCHEDULER__ORPHAN_MIN_AGE": "1",
    "CONVEYOR_WORKER__HEARTBEAT_INTERVAL": "0.5",
    "CONVEYOR_WORKER__HEARTBEAT_TTL": "2",
    "CONVEYOR_WORKER__QUEUE_POLL_INTERVAL": "0.5",
    "CONVEYOR_WORKER__GRACEFUL_SHUTDOWN_TIMEOUT": "0.5",
    "CONVEYOR_TASKS__BACKOFF_BASE": "0.1",
    "CONVEYOR_TASKS__BACKOFF_CAP": "1",
}


def wait_until(
    predicate: Callable[[], T], timeout: float, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# -- database ---------------------------------------------------------------------------------


class Database:
    """A fresh database on a real server, queried synchronously through a private loop."""

    def __init__(self, backend: str, url: str, loop: asyncio.AbstractEventLoop) -> None:
        self.backend = backend
        self.url = url
        self._loop = loop
        self._engine: AsyncEngine | None = None

    def rows(self, query: str, **params: Any) -> list[sa.Row[Any]]:
        return self._loop.run_until_complete(self._rows(query, params))

    def scalar(self, query: str, **params: Any) -> Any:
        found = self.rows(query, **params)
        return found[0][0] if found else None

    async def _rows(self, query: str, params: dict[str, Any]) -> list[sa.Row[Any]]:
        if self._engine is None:
            self._engine = create_async_engine(self.url)
        async with self._engine.connect() as conn:
            result = await conn.execute(sa.text(query), params)
            return list(result)

    def dispose(self) -> None:
        if self._engine is not None:
            self._loop.run_until_complete(self._engine.dispose())
            self._engine = None


@contextlib.contextmanager
def database(backend: str, tmp_path: Path) -> Iterator[Database]:
    loop = asyncio.new_event_loop()
    try:
        manager = fresh_database(backend, tmp_path)
        url = loop.run_until_complete(manager.__aenter__())
        db = Database(backend, url, loop)
        try:
            yield db
        finally:
            db.dispose()
            loop.run_until_complete(manager.__aexit__(None, None, None))
    finally:
        loop.close()


# -- processes --------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Cluster:
    """The processes of one test, sharing one database, one Redis and one key prefix."""

    tmp_path: Path
    db: Database
    redis_url: str
    prefix: str = field(default_factory=lambda: f"cvt{uuid.uuid4().hex[:10]}:")
    extra_env: dict[str, str] = field(default_factory=dict)
    fast: bool = True
    procs: list[Proc] = field(default_factory=list)
    killed: list[Proc] = field(default_factory=list)  # on purpose, so not a failure
    url: str | None = None

    # -- starting ------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        env.update(BASE_ENV)
        if self.fast:
            env.update(FAST_ENV)
        env.update(
            CONVEYOR_DATABASE_URL=self.db.url,
            CONVEYOR_REDIS_URL=self.redis_url,
            CONVEYOR_REDIS_PREFIX=self.prefix,
        )
        env.update(self.extra_env)
        env.update(extra)
        return env

    def start(
        self, name: str, *args: str, command: Sequence[str] | None = None, **env: str
    ) -> Proc:
        """Start ``conveyor ARGS`` (or ``command`` + ARGS) with this cluster's environment."""
        log = self.tmp_path / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [*(command or [conveyor_command()]), *args], env=self.env(**env), stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                cwd=self.tmp_path,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def migrate(self) -> None:
        done = subprocess.run(
            [conveyor_command(), "migrate"], env=self.env(), capture_output=True, timeout=60,
            cwd=self.tmp_path, check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")

    def api(self, wait: bool = True) -> Proc:
        port = free_port()
        proc = self.start("api", "api", "--port", str(port))
        self.url = f"http://127.0.0.1:{port}"
        if wait:
            self.wait_api()
        return proc

    def wait_api(self, timeout: float = 60) -> None:
        def healthy() -> bool:
            self.check_alive()
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout, 0.1, "the API /healthz")

    def scheduler(self, **env: str) -> Proc:
        n = sum(p.name.startswith("scheduler") for p in self.procs)
        return self.start(f"scheduler-{n}", "scheduler", **env)

    def worker(self, capacity: int = 10, **env: str) -> Proc:
        n = sum(p.name.startswith("worker") for p in self.procs)
        return self.start(f"worker-{n}", "worker", "--capacity", str(capacity), **env)

    def client(self) -> Client:
        assert self.url is not None, "start the API first"
        return Client(self.url, timeout=30)

    # -- looking -------------------------------------------------------------------------

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True, socket_timeout=2)

    def leader(self) -> tuple[str, int] | None:
        """``(holder, epoch)`` of the lease in Redis, or None when nobody holds it."""
        with self.redis() as r:
            value = r.get(f"{self.prefix}scheduler:leader")
        if not value:
            return None
        holder, epoch = str(value).rsplit("|", 1)
        return holder, int(epoch)

    def by_id(self, process_id: str) -> Proc:
        """The process behind a worker or scheduler id (``role-host-pid-suffix``)."""
        pid = int(process_id.rsplit("-", 2)[-2])
        return next(p for p in self.procs if p.pid == pid)

    def wait_workers(self, count: int, timeout: float = 60) -> list[str]:
        def registered() -> list[str]:
            self.check_alive()
            with self.redis() as r:
                ids = [str(w) for w in r.zrange(f"{self.prefix}workers", 0, -1)]
            return ids if len(ids) >= count else []

        return wait_until(registered, timeout, 0.1, f"{count} workers to register")

    def queued_with(self, worker_id: str) -> list[str]:
        """Task ids waiting in a worker's queue."""
        with self.redis() as r:
            return [str(x).split("|")[0]
                    for x in r.lrange(f"{self.prefix}worker:{worker_id}:queue", 0, -1)]

    def wait_leader(self, timeout: float = 30) -> tuple[str, int]:
        return wait_until(self.leader, timeout, 0.02, "a scheduler leader")

    def count(self, status: str) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM task WHERE status = :s", s=status))

    def wait_status(self, status: str, count: int, timeout: float) -> None:
        def reached() -> bool:
            self.check_alive()
            return self.count(status) >= count

        wait_until(reached, timeout, 0.2, f"{count} tasks in {status}")

    def check_alive(self, *skip: Proc) -> None:
        dead = [p for p in self.procs if not p.alive and p not in (*skip, *self.killed)]
        assert not dead, "processes exited: " + ", ".join(
            f"{p.name} (code {p.popen.returncode})\n{p.tail()}" for p in dead
        )

    # -- stopping ------------------------------------------------------------------------

    def kill(self, proc: Proc, sig: int = signal.SIGKILL) -> None:
        proc.signal(sig)
        if sig == signal.SIGKILL:
            self.killed.append(proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(5)

    def shutdown(self) -> None:
        for proc in self.procs:
            proc.signal(signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(5)
        with contextlib.suppress(redis.RedisError), self.redis() as r:
            keys = list(r.scan_iter(f"{self.prefix}*", count=1000))
            for i in range(0, len(keys), 500):
                r.delete(*keys[i:i + 500])

    def report(self) -> None:
        for proc in self.procs:
            code = proc.popen.poll()
            print(f"\n----- {proc.name} (pid {proc.pid}, exit {code}) -----\n{proc.tail()}")


@contextlib.contextmanager
def cluster(
    tmp_path: Path, backend: str = "mariadb", redis_url: str = SHARED_REDIS, *,
    fast: bool = True, kind: type[Cluster] = Cluster, **env: str,
) -> Iterator[Cluster]:
    """A fresh database (migrated) and an empty key prefix; every process killed at the end.
    ``fast=False`` keeps the production defaults for leases, heartbeats and sweeps; ``kind``
    is the cluster class (``etcd_harness.EtcdCluster`` for etcd)."""
    with database(backend, tmp_path) as db:
        c = kind(tmp_path, db, redis_url, extra_env=env, fast=fast)
        try:
            c.migrate()
            yield c
        except BaseException:
            c.report()
            raise
        finally:
            c.shutdown()
            db.dispose()


# -- a private redis-server -------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    config: Path | None = None  # a config file, read first (a Sentinel's is rewritten by it)
    extra: Sequence[str] = ()  # more redis-server arguments (``--replicaof``, ``--sentinel``)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        log = (self.workdir / f"redis-server-{self.port}.log").open("ab")
        with log:
            self.proc = subprocess.Popen(
                [binary, *([str(self.config)] if self.config else []), "--port",
                 str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--daemonize", "no", "--dir", str(self.workdir), *self.extra],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

        def answers() -> bool:
            assert self.proc is not None and self.proc.poll() is None, "redis-server exited"
            try:
                with redis.Redis(port=self.port, socket_timeout=0.5) as r:
                    return bool(r.ping())
            except redis.RedisError:
                return False

        wait_until(answers, 10, 0.05, f"redis-server on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            self.proc = None


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        import pytest

        pytest.skip("redis-server is not installed")
    server = RedisServer(free_port(), workdir)
    try:
        server.start()
        yield server
    finally:
        server.kill()
