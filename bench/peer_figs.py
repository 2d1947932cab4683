"""Every system measured the same way (issue 17): the peers in their own virtualenvs under
``bench/.venvs/`` and Conveyor (``conveyor_systems.py``) behind one interface, ``System``, and
the figures run against it. Task bodies run the probe (``peers/_probe.py``: one ``INCR`` a
task), the submit side is ``peers/driver.py`` in the system's own virtualenv, and every time is
``time.time()`` on this machine: the bench's before it launches the workers or submits, the
bodies' stored in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import redis.asyncio as aredis

from harness import BENCH, REDIS_HOST, REDIS_PORT, BenchError, Proc, Procs

VENVS = BENCH / ".venvs"


class System(Protocol):
    """What the figures need of a system: its side that is up before any worker (Conveyor's API
    and scheduler; nothing for a Redis-only peer), its submit side and its workers."""

    name: str
    app: str  # peers/<app>_app.py
    python: Path  # runs peers.driver

    def up(self, probe: dict[str, str]) -> contextlib.AbstractAsyncContextManager[None]:
        """Bring up what runs before the workers, for a run with this probe environment."""

    def env(self) -> dict[str, str]:
        """The environment of the driver and the workers (the probe's included)."""

    def start_workers(self, latency: bool) -> list[Proc]: ...

    async def started(self, workers: list[Proc]) -> None:
        """Called at once after the launch (the standalone server resumes its queue here)."""

    async def before_drain(self) -> None:
        """Called before the queue is filled for a drain (the standalone server pauses it)."""

    async def counters(self) -> dict[str, float]:
        """Counters read before and after a run, whose deltas per task the results state
        (``<name>_per_task``): etcd's Raft proposals for Conveyor on etcd."""


@dataclass(frozen=True)
class Peer:
    name: str
    requirements: tuple[str, ...]
    dist: str  # the distribution whose version the results name
    workers: Callable[[Path, bool, str], list[list[str]]]  # (venv bin, latency?, redis url)
    venv: str = ""  # default: the name
    app: str = ""  # default: the name

    @property
    def venv_dir(self) -> Path:
        return VENVS / (self.venv or self.name)


def _celery(bin_: Path, latency: bool, _url: str) -> list[list[str]]:
    cmd = [str(bin_ / "celery"), "-A", "peers.celery_app", "worker", "--pool", "prefork",
           "--concurrency", "2", "-O", "fair", "--loglevel", "WARNING", "--without-gossip",
           "--without-mingle", "--without-heartbeat"]
    return [cmd + (["--prefetch-multiplier", "1"] if latency else [])]


def _huey(kind: str) -> Callable[[Path, bool, str], list[list[str]]]:
    def cmds(bin_: Path, _latency: bool, _url: str) -> list[list[str]]:
        return [[str(bin_ / "huey_consumer"), "peers.huey_app.huey", "-k", kind, "-w", "2",
                 "-q"]]
    return cmds


PEERS: dict[str, Peer] = {p.name: p for p in (
    Peer("celery", ("celery[redis]",), "celery", _celery),
    Peer("dramatiq", ("dramatiq[redis]",), "dramatiq", lambda b, _l, _u: [
        [str(b / "dramatiq"), "peers.dramatiq_app", "--processes", "2"]]),
    Peer("rq", ("rq",), "rq", lambda b, _l, u: [
        [str(b / "rq"), "worker", "--url", u, "--quiet", "bench"] for _ in range(2)]),
    Peer("arq", ("arq",), "arq", lambda b, _l, _u: [
        [str(b / "arq"), "peers.arq_app.WorkerSettings"] for _ in range(2)]),
    Peer("taskiq", ("taskiq", "taskiq-redis"), "taskiq", lambda b, _l, _u: [
        [str(b / "taskiq"), "worker", "peers.taskiq_app:broker", "--workers", "2"]]),
    Peer("huey-process", ("huey", "redis"), "huey", _huey("process"), venv="huey", app="huey"),
    Peer("huey-thread", ("huey", "redis"), "huey", _huey("thread"), venv="huey", app="huey"),
    Peer("saq", ("saq[redis]", "typing_extensions"), "saq", lambda b, _l, _u: [
        [str(b / "saq"), "peers.saq_app.settings", "--workers", "2"]]),
    Peer("streaq", ("streaq", "redis"), "streaq", lambda b, _l, _u: [
        [str(b / "streaq"), "run", "peers.streaq_app:worker", "--workers", "2"]]),
)}


def ensure_venv(peer: Peer) -> str:
    """Create the peer's virtualenv and install the peer (once); return its version."""
    venv = peer.venv_dir
    python = venv / "bin" / "python"
    marker = venv / ".bench-installed"
    wanted = " ".join(peer.requirements)
    if not marker.exists() or marker.read_text() != wanted:
        print(f"  installing {peer.name} into {venv.relative_to(BENCH.parent)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             *peer.requirements], check=True, timeout=600,
        )
        marker.write_text(wanted)
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({peer.dist!r}))"],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


class PeerRedis:
    """The Redis DB the peers and every system's probe use: must be empty when the bench
    starts; flushed between and after runs (everything in it is the bench's)."""

    def __init__(self, db: int) -> None:
        self.db = db
        self.url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
        self.client = aredis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        self.owned = False

    async def claim(self) -> None:
        if await self.client.dbsize():
            raise BenchError(f"Redis DB {self.db} is not empty; choose another with --peer-db")
        self.owned = True

    async def flush(self) -> None:
        if self.owned:
            await self.client.flushdb()

    async def close(self) -> None:
        await self.flush()
        await self.client.aclose()


class PeerSystem:
    """A Redis-only peer: nothing runs before its workers."""

    def __init__(self, procs: Procs, peer: Peer, redis: PeerRedis) -> None:
        self.procs, self.peer, self.redis = procs, peer, redis
        self.name, self.app = peer.name, peer.app or peer.name
        self.python = peer.venv_dir / "bin" / "python"
        self.probe: dict[str, str] = {}

    @contextlib.asynccontextmanager
    async def up(self, probe: dict[str, str]) -> AsyncIterator[None]:
        self.probe = probe
        yield

    def env(self) -> dict[str, str]:
        return driver_env(self.probe)

    def start_workers(self, latency: bool) -> list[Proc]:
        return [self.procs.start(f"{self.name}-worker", cmd, self.env(), cwd=BENCH)
                for cmd in self.peer.workers(self.peer.venv_dir / "bin", latency,
                                             self.redis.url)]

    async def started(self, workers: list[Proc]) -> None:
        return None

    async def before_drain(self) -> None:
        return None

    async def counters(self) -> dict[str, float]:
        return {}


def driver_env(probe: dict[str, str], **extra: str) -> dict[str, str]:
    """This environment, minus another virtualenv's, plus the probe's and ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, **probe, "PYTHONPATH": str(BENCH), **extra}


async def driver(system: System, args: list[str], timeout: float) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        str(system.python), "-m", "peers.driver", system.app, *args, cwd=BENCH,
        env=system.env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BenchError(f"{system.name} driver timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise BenchError(f"{system.name} driver failed:\n{err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def _probe_env(redis: PeerRedis, target: int = 0) -> tuple[str, dict[str, str]]:
    key = f"benchprobe:{uuid.uuid4().hex[:8]}"
    return key, {"BENCH_REDIS_URL": redis.url, "BENCH_PROBE_KEY": key,
                 "BENCH_PROBE_TARGET": str(target)}


def _dead(system: System, workers: list[Proc]) -> None:
    dead = [w for w in workers if not w.alive()]
    if dead:
        raise BenchError(f"{system.name} worker exited:\n{dead[0].tail()}")


async def drain(
    procs: Procs, system: System, redis: PeerRedis, kind: str, count: int, cap: float,
    measure: int | None = None,
) -> dict[str, float]:
    """``count`` tasks (``noop`` or ``nap``) queued with no worker up, then the workers
    launched: tasks/s from the launch (start-up included) and from the first finish, and the
    launch → first task done, over the first ``measure`` tasks (default: all). A system still
    draining after ``cap`` seconds is measured on what it did by then (``done`` <
    ``measure``)."""
    measure = measure or count
    key, probe = _probe_env(redis, measure)
    async with system.up(probe):
        await system.before_drain()
        before = await system.counters()
        enq = await driver(system, ["enqueue", "--kind", kind, "--count", str(count)],
                           300 + count / 200)
        launched = time.time()
        workers = system.start_workers(latency=False)
        try:
            await system.started(workers)
            done = 0
            while done < measure and time.time() - launched < cap:
                await asyncio.sleep(0.05)
                _dead(system, workers)
                done = int(await redis.client.get(f"{key}:n") or 0)
            ended = time.time()
            per_task = _per_task(before, await system.counters(), done)
            first = await redis.client.get(f"{key}:first")
            last = await redis.client.get(f"{key}:last")
        finally:
            procs.stop(workers)
            await redis.flush()
    if first is None:
        raise BenchError(f"{system.name} ran no task in {cap:.0f} s")
    end = float(last) if last is not None else ended
    return {"from_launch_per_s": done / (end - launched),
            "after_first_per_s": (done - 1) / max(end - float(first), 1e-9),
            "first_task_s": float(first) - launched, "done": float(done),
            "seconds": end - launched, "enqueue_per_s": count / float(enq["seconds"]),
            **per_task}


def _per_task(before: dict[str, float], after: dict[str, float], tasks: int) -> dict[
        str, float]:
    return {f"{k}_per_task": (after[k] - before[k]) / max(tasks, 1) for k in before}


async def latency(
    procs: Procs, system: System, redis: PeerRedis, samples: int, gap: float,
) -> tuple[list[float], dict[str, float]]:
    """Submit → first line of the task body for ``samples`` tasks, one at a time, in seconds;
    and the system's counters per task over them (one at a time: nothing batches)."""
    _, probe = _probe_env(redis)
    async with system.up(probe):
        workers = system.start_workers(latency=True)
        try:
            await system.started(workers)
            _dead(system, workers)
            # One task started first, so a slow boot is not a latency (each try waits 5 s for
            # it); the driver then drops 10 more.
            for _ in range(12):
                warm = await driver(system, ["latency", "--samples", "1", "--warmup", "0",
                                             "--gap", "0"], 90)
                if not warm.get("lost"):
                    break
            before = await system.counters()
            out = await driver(system, ["latency", "--samples", str(samples), "--gap", str(gap)],
                               120 + samples * (gap + 0.05))
            per_task = _per_task(before, await system.counters(), samples + 10)
        finally:
            procs.stop(workers)
            await redis.flush()
    if out.get("lost"):
        raise BenchError(f"{system.name}: {out['lost']} latency samples never started")
    return [float(x) for x in out["latencies"]], per_task


CREATE_MODES = ("sequential", "batched", "concurrent")


async def create(
    system: System, redis: PeerRedis, count: int, cap: float,
) -> dict[str, dict[str, float]]:
    """Tasks/s through the submit API, no worker running, for each mode of ``CREATE_MODES``
    (a mode the system has no call for is left out)."""
    _, probe = _probe_env(redis)
    out: dict[str, dict[str, float]] = {}
    async with system.up(probe):
        try:
            for mode in CREATE_MODES:
                n = count * (10 if mode == "batched" else 1)
                got = await driver(system, ["create", "--mode", mode, "--count", str(n),
                                                 "--cap", str(cap)], cap + 120)
                if not got.get("unsupported"):
                    out[mode] = {k: float(v) for k, v in got.items()}
        finally:
            await redis.flush()
    return out
