"""The submit side of every system, run inside its virtualenv (cwd ``bench/``):

    python -m peers.driver SYSTEM latency --samples N --gap S
    python -m peers.driver SYSTEM enqueue --kind noop|nap --count N
    python -m peers.driver SYSTEM create --mode sequential|batched|concurrent --count N --cap S

prints one JSON line. An app module ``peers/<system>_app.py`` offers ``submit_stamp(token)``,
``submit_one()``, ``enqueue(kind, count)`` and, when the system has a batch call,
``submit_batch(size)``; async systems offer the same names prefixed with ``a`` (coroutines),
run here on one event loop. ``concurrent`` runs 50 clients: coroutines on that loop for an async
API (``asubmit_one``), threads otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

from peers import _probe

CLIENTS = 50
BATCH = 100
_runner = asyncio.Runner()


def call(app: ModuleType, name: str, *args: Any) -> Any:
    """``app.name(*args)``, or run ``app.aname(*args)`` on the driver's loop."""
    func = getattr(app, name, None)
    if func is not None:
        return func(*args)
    return _runner.run(getattr(app, f"a{name}")(*args))


def has(app: ModuleType, name: str) -> bool:
    return hasattr(app, name) or hasattr(app, f"a{name}")


def latency(app: ModuleType, samples: int, gap: float, warmup: int) -> dict[str, Any]:
    redis = _probe.client()
    seconds: list[float] = []
    lost = 0
    for i in range(samples + warmup):
        token = uuid.uuid4().hex
        key = f"{_probe.PROBE_KEY}:lat:{token}"
        sent = time.time()
        call(app, "submit_stamp", token)
        try:
            item = redis.blpop([key], timeout=5)
        except _probe.redis.TimeoutError:  # the socket's read timed out before BLPOP's
            item = None
        if item is None:
            lost += 1
        elif i >= warmup:
            seconds.append(float(item[1]) - sent)
        time.sleep(max(0.0, sent + gap - time.time()))
    return {"latencies": seconds, "lost": lost}


def enqueue(app: ModuleType, kind: str, count: int) -> dict[str, Any]:
    began = time.perf_counter()
    call(app, "enqueue", kind, count)
    return {"enqueued": count, "seconds": time.perf_counter() - began}


def create(app: ModuleType, mode: str, count: int, cap: float) -> dict[str, Any]:
    """Tasks/s through the system's submit API; a run stops taking new work after ``cap`` s."""
    if mode == "batched" and not has(app, "submit_batch"):
        return {"unsupported": True}
    call(app, "submit_one")  # connections made, code paths warm
    deadline = time.monotonic() + cap
    began, cpu = time.perf_counter(), time.process_time()
    if mode == "sequential":
        done = _loop(lambda: call(app, "submit_one"), 1, count, deadline)
    elif mode == "batched":
        done = _loop(lambda: call(app, "submit_batch", BATCH), BATCH, count, deadline)
    elif hasattr(app, "asubmit_one"):
        done = _runner.run(_gather(app, count, deadline))
    else:
        with ThreadPoolExecutor(CLIENTS) as pool:
            share = count // CLIENTS
            done = sum(pool.map(lambda _: _loop(app.submit_one, 1, share, deadline),
                                range(CLIENTS)))
    wall = time.perf_counter() - began
    return {"tasks": done, "seconds": wall, "tasks_per_s": done / wall,
            "client_cpu_share": (time.process_time() - cpu) / wall}


def _loop(submit: Callable[[], Any], per: int, count: int, deadline: float) -> int:
    done = 0
    while done < count and time.monotonic() < deadline:
        submit()
        done += per
    return done


async def _gather(app: ModuleType, count: int, deadline: float) -> int:
    async def client(share: int) -> int:
        done = 0
        while done < share and time.monotonic() < deadline:
            await app.asubmit_one()
            done += 1
        return done

    return sum(await asyncio.gather(*(client(count // CLIENTS) for _ in range(CLIENTS))))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("system")
    parser.add_argument("what", choices=["latency", "enqueue", "create"])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--gap", type=float, default=0.02)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--kind", choices=["noop", "nap"], default="noop")
    parser.add_argument("--mode", choices=["sequential", "batched", "concurrent"])
    parser.add_argument("--cap", type=float, default=15.0)
    args = parser.parse_args()
    app = importlib.import_module(f"peers.{args.system}_app")
    if args.what == "latency":
        out = latency(app, args.samples, args.gap, args.warmup)
    elif args.what == "enqueue":
        out = enqueue(app, args.kind, args.count)
    else:
        out = create(app, args.mode, args.count, args.cap)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
