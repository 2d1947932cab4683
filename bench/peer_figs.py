"""The peers (Celery, Dramatiq, RQ, arq): each in its own virtualenv under ``bench/.venvs/``,
on its own Redis DB index, measured for figure 2 (latency) and figure 3 (drain)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aredis

from harness import BENCH, REDIS_HOST, REDIS_PORT, BenchError, Procs

VENVS = BENCH / ".venvs"


@dataclass(frozen=True)
class Peer:
    name: str
    requirements: tuple[str, ...]
    dist: str  # the distribution whose version the results name
    workers: Callable[[Path, bool, str], list[list[str]]]  # (venv bin, latency?, redis url)
    direct_probe: bool = False  # forks per job: the probe writes every task at once


def _celery(bin_: Path, latency: bool, _url: str) -> list[list[str]]:
    cmd = [str(bin_ / "celery"), "-A", "peers.celery_app", "worker", "--pool", "prefork",
           "--concurrency", "2", "-O", "fair", "--loglevel", "WARNING", "--without-gossip",
           "--without-mingle", "--without-heartbeat"]
    return [cmd + (["--prefetch-multiplier", "1"] if latency else [])]


def _dramatiq(bin_: Path, _latency: bool, _url: str) -> list[list[str]]:
    return [[str(bin_ / "dramatiq"), "peers.dramatiq_app", "--processes", "2"]]


def _rq(bin_: Path, _latency: bool, url: str) -> list[list[str]]:
    return [[str(bin_ / "rq"), "worker", "--url", url, "--quiet", "bench"] for _ in range(2)]


def _arq(bin_: Path, _latency: bool, _url: str) -> list[list[str]]:
    return [[str(bin_ / "arq"), "peers.arq_app.WorkerSettings"] for _ in range(2)]


PEERS: dict[str, Peer] = {
    "celery": Peer("celery", ("celery[redis]",), "celery", _celery),
    "dramatiq": Peer("dramatiq", ("dramatiq[redis]",), "dramatiq", _dramatiq),
    "rq": Peer("rq", ("rq",), "rq", _rq, direct_probe=True),
    "arq": Peer("arq", ("arq",), "arq", _arq),
}


def ensure_venv(peer: Peer) -> str:
    """Create ``bench/.venvs/<peer>`` and install the peer (once); return its version."""
    venv = VENVS / peer.name
    python = venv / "bin" / "python"
    marker = venv / ".bench-installed"
    if not marker.exists():
        print(f"  installing {peer.name} into {venv.relative_to(BENCH.parent)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             *peer.requirements], check=True, timeout=600,
        )
        marker.write_text(" ".join(peer.requirements))
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({peer.dist!r}))"],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


class PeerRedis:
    """The peers' Redis DB: must be empty when the bench starts; flushed between and after runs
    (everything in it is the bench's)."""

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


def _env(peer: Peer, redis: PeerRedis, probe_key: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    env.update(BENCH_REDIS_URL=redis.url, BENCH_PROBE_KEY=probe_key, PYTHONPATH=str(BENCH),
               BENCH_PROBE_DIRECT="1" if peer.direct_probe else "0")
    return env


async def _driver(peer: Peer, env: dict[str, str], args: list[str], timeout: float) -> dict[
        str, object]:
    python = VENVS / peer.name / "bin" / "python"
    proc = await asyncio.create_subprocess_exec(
        str(python), "-m", "peers.driver", peer.name, *args, cwd=BENCH, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BenchError(f"{peer.name} driver timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise BenchError(f"{peer.name} driver failed:\n{err.decode()[-2000:]}")
    result: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def latency_run(
    procs: Procs, peer: Peer, redis: PeerRedis, samples: int, gap: float,
) -> list[float]:
    """Submit → started for ``samples`` tasks, one at a time; seconds."""
    env = _env(peer, redis, f"benchpeer:{uuid.uuid4().hex[:8]}")
    workers = [procs.start(f"{peer.name}-worker", cmd, env, cwd=BENCH)
               for cmd in peer.workers(VENVS / peer.name / "bin", True, redis.url)]
    try:
        await asyncio.sleep(0.5)
        dead = [w for w in workers if not w.alive()]
        if dead:
            raise BenchError(f"{peer.name} worker exited:\n{dead[0].tail()}")
        timeout = 120 + samples * (gap + 0.05)
        # The first samples wait for the workers to come up: the driver drops 10 as warm-up,
        # and we wait for one stamp first so a slow boot is not a latency.
        await _driver(peer, env, ["latency", "--samples", "1", "--warmup", "0", "--gap", "0"], 90)
        out = await _driver(peer, env, ["latency", "--samples", str(samples), "--gap", str(gap)],
                            timeout)
        if out.get("lost"):
            raise BenchError(f"{peer.name}: {out['lost']} latency samples never started")
        latencies = out["latencies"]
        assert isinstance(latencies, list)
        return [float(x) for x in latencies]
    finally:
        procs.stop(workers)
        await redis.flush()


async def drain_run(
    procs: Procs, peer: Peer, redis: PeerRedis, count: int, cap: float,
) -> dict[str, float]:
    """Queue ``count`` no-ops with no worker up, then start the workers; tasks/s from the first
    task to the last. A peer still draining after ``cap`` seconds is measured on what it did
    by then (``done`` < ``count``)."""
    probe_key = f"benchpeer:{uuid.uuid4().hex[:8]}"
    env = _env(peer, redis, probe_key)
    enq = await _driver(peer, env, ["enqueue", "--count", str(count)], 300)
    workers = [procs.start(f"{peer.name}-worker", cmd, env, cwd=BENCH)
               for cmd in peer.workers(VENVS / peer.name / "bin", False, redis.url)]
    try:
        began = time.monotonic()
        total, first, last = 0, float("inf"), 0.0
        while total < count and time.monotonic() - began < cap:
            await asyncio.sleep(0.2)
            dead = [w for w in workers if not w.alive()]
            if dead:
                raise BenchError(f"{peer.name} worker exited:\n{dead[0].tail()}")
            total, first, last = _tally(await redis.client.hgetall(probe_key))
        if total == 0:
            raise BenchError(f"{peer.name} ran no task in {cap:.0f} s")
        return {"tasks_per_s": total / (last - first), "seconds": last - first,
                "done": float(total), "enqueue_per_s": count / float(str(enq["seconds"])),
                "wall_from_worker_start": time.monotonic() - began}
    finally:
        procs.stop(workers)
        await redis.flush()


def _tally(fields: dict[bytes, bytes]) -> tuple[int, float, float]:
    """Sum the probe's per-process ``count first last`` fields."""
    total, first, last = 0, float("inf"), 0.0
    for raw in fields.values():
        n, f, la = raw.decode().split()
        total += int(n)
        first, last = min(first, float(f)), max(last, float(la))
    return total, first, last
