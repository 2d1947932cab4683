"""What every figure needs: started processes that always get killed, free ports, statistics,
MariaDB and Redis helpers, bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncmy
import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = ROOT / ".venv" / "bin"
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root"}
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# The database index Conveyor's clusters use (keys under a fresh prefix either way).
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "0"))


class BenchError(RuntimeError):
    """A figure could not be measured (a process died, a bound ran out)."""


# -- processes ------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Procs:
    """Every process the bench starts, each in its own session (so its children go with it)."""

    log_dir: Path
    running: list[Proc] = field(default_factory=list)
    _seq: int = 0

    def __post_init__(self) -> None:
        _EVERY_PROCS.append(self)

    def start(
        self, name: str, cmd: Sequence[str | Path], env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        self._seq += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{self._seq:03d}-{name}.log"
        out: IO[bytes]
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [str(c) for c in cmd], env=dict(env) if env is not None else None,
                cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.running.append(proc)
        return proc

    def kill(self, proc: Proc, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the process group of one process we started."""
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        if sig == signal.SIGKILL:
            _reap(proc, 10)

    def stop(self, procs: Sequence[Proc], grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL whatever is still there after ``grace`` seconds."""
        for proc in procs:
            self.kill(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            _reap(proc, max(0.0, deadline - time.monotonic()))
        for proc in procs:
            self.kill(proc, signal.SIGKILL)
            # The group may outlive its leader (a forked child): kill it by the group id too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc in self.running:
                self.running.remove(proc)

    def stop_all(self) -> None:
        self.stop(list(self.running), grace=3.0)


_EVERY_PROCS: list[Procs] = []


def stop_everything() -> None:
    """Last resort (``main``'s ``finally``): kill whatever any ``Procs`` still has running."""
    for procs in _EVERY_PROCS:
        procs.stop_all()


def _reap(proc: Proc, timeout: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.popen.wait(timeout=timeout)


# Everything the bench listens on is in [PORT_BASE, PORT_BASE + 100) (a shared machine hands
# each user a range): the API ports, and from PORT_BASE + 90 on the private servers of
# ``extras.py``.
PORT_BASE = int(os.environ.get("BENCH_PORT_BASE", "21400"))
_next_port = itertools.count()


def free_port() -> int:
    """A port of the bench's range that nothing listens on now (round robin over 90)."""
    for _ in range(90):
        port = PORT_BASE + next(_next_port) % 90
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise BenchError(f"no free port in {PORT_BASE}-{PORT_BASE + 89}")


def install_signal_exit() -> None:
    """SIGTERM/SIGHUP end the bench through its ``finally`` blocks, like Ctrl-C does."""

    def _exit(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)


# -- waiting --------------------------------------------------------------------------------


async def wait_until(
    check: Callable[[], Awaitable[Any]], timeout: float, what: str, every: float = 0.1,
    procs: Sequence[Proc] = (),
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds or as
    soon as one of ``procs`` has died."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        for proc in procs:
            if not proc.alive():
                raise BenchError(f"{proc.name} exited ({proc.popen.returncode}) while waiting "
                                 f"for {what}:\n{proc.tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(every)


async def http_ok(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1.0) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


# -- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median and range of one figure's repeated runs."""
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# -- MariaDB and PostgreSQL -----------------------------------------------------------------

# Names of the throw-away databases: ``<prefix><hex>``.
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "conveyor_bench_")


async def sql(query: str, db: str | None = None, args: Sequence[Any] = (),
              port: int = MYSQL["port"]) -> list[tuple[Any, ...]]:
    """One MariaDB statement (``%s`` placeholders); its rows."""
    conn = await asyncmy.connect(**{**MYSQL, "port": port}, db=db, autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(query, args or None)
            return list(await cur.fetchall() or [])
    finally:
        conn.close()


async def pg(query: str, db: str = "postgres", args: Sequence[Any] = (),
             port: int = 5432) -> list[tuple[Any, ...]]:
    """One PostgreSQL statement (``$1`` placeholders); its rows."""
    import asyncpg

    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database=db)
    try:
        return [tuple(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


@dataclass(frozen=True)
class Servers:
    """Where the throw-away databases go (the counting figure runs a MariaDB of its own)."""

    mariadb_port: int = MYSQL["port"]
    postgres_port: int = 5432

    def url(self, kind: str, name: str) -> str:
        if kind == "postgres":
            return f"postgresql://postgres@127.0.0.1:{self.postgres_port}/{name}"
        return f"mysql://root@127.0.0.1:{self.mariadb_port}/{name}"

    async def create(self, kind: str, name: str) -> None:
        if kind == "postgres":
            await pg(f"CREATE DATABASE {name}", port=self.postgres_port)
        else:
            await sql(f"CREATE DATABASE `{name}`", port=self.mariadb_port)

    async def drop(self, kind: str, name: str) -> None:
        if kind == "postgres":
            await pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", port=self.postgres_port)
        else:
            await sql(f"DROP DATABASE IF EXISTS `{name}`", port=self.mariadb_port)

    async def query(self, kind: str, name: str, query: str) -> list[tuple[Any, ...]]:
        """A statement without parameters, on either server."""
        if kind == "postgres":
            return await pg(query, name, port=self.postgres_port)
        return await sql(query, name, port=self.mariadb_port)


SERVERS = Servers()


# -- Redis ----------------------------------------------------------------------------------


async def redis_delete_prefix(prefix: str, url: str) -> int:
    """Delete the keys under one prefix (what a Conveyor cluster of the bench created)."""
    import redis.asyncio as aredis

    client = aredis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await client.delete(*batch)
                batch.clear()
        if batch:
            deleted += await client.delete(*batch)
    finally:
        await client.aclose()
    return deleted


# -- etcd -----------------------------------------------------------------------------------

ETCD_URL = os.environ.get("BENCH_ETCD_URL", "etcd://127.0.0.1:2379")


async def etcd_delete_prefix(prefix: str) -> None:
    """Delete the keys under one prefix on the bench's etcd."""
    from conveyor.coordination.etcd import connect_etcd

    coord = await connect_etcd(ETCD_URL, prefix)
    try:
        await coord.closer.client.txn([], [("delete_prefix", prefix.encode())])  # type: ignore[attr-defined]
    finally:
        await coord.close()


async def etcd_writes() -> float:
    """Raft proposals etcd committed so far (every write: transaction, put, lease grant),
    from its /metrics: each is a quorum write synced to disk."""
    host = ETCD_URL.removeprefix("etcd://").split(",")[0]
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://{host}/metrics")).text
    for line in text.splitlines():
        if line.startswith("etcd_server_proposals_committed_total "):
            return float(line.split()[1])
    raise BenchError("etcd /metrics has no etcd_server_proposals_committed_total")
