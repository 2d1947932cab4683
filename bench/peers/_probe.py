"""What every system's benchmark task does, Conveyor's included (stdlib + redis-py only, since it
runs inside each peer's own virtualenv): the same Redis commands for every system, so no figure
is read from a system's own bookkeeping.

- ``count()``: one ``INCR`` of the run's counter. The task that makes it 1 also stores
  ``time.time()`` under ``<key>:first``, the one that makes it ``BENCH_PROBE_TARGET`` under
  ``<key>:last``: the bench times a run from those two stamps and its own launch time.
- ``stamp(token)``: the first line of the latency task: ``time.time()`` pushed to
  ``<key>:lat:<token>``, where the submitter waits on BLPOP (one clock: the submitter's
  ``time.time()`` before the submit call, the body's at its start).
- ``nap()``: sleep 10 ms, then ``count()``.

``a``-prefixed twins are for async task bodies (an async Redis client, so concurrent tasks do
not block their event loop on each other's round trips). Environment: ``BENCH_REDIS_URL``,
``BENCH_PROBE_KEY`` and ``BENCH_PROBE_TARGET``.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref

import redis
import redis.asyncio as aredis

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
PROBE_KEY = os.environ.get("BENCH_PROBE_KEY", "benchpeer:probe")
TARGET = int(os.environ.get("BENCH_PROBE_TARGET", "0"))
NAP = 0.010

_client: redis.Redis | None = None
_client_pid: int | None = None
_aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = (
    weakref.WeakKeyDictionary())


def client() -> redis.Redis:
    """One connection pool per process (re-made after a fork)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(REDIS_URL)
        _client_pid = os.getpid()
    return _client


def aclient() -> aredis.Redis:
    """One async client per event loop (a pool cannot cross loops)."""
    loop = asyncio.get_running_loop()
    found = _aclients.get(loop)
    if found is None:
        found = _aclients[loop] = aredis.Redis.from_url(REDIS_URL)
    return found


def _marks(n: int) -> list[str]:
    """The stamp keys a counter value ``n`` must set (usually none)."""
    return ([f"{PROBE_KEY}:first"] if n == 1 else []) + (
        [f"{PROBE_KEY}:last"] if n == TARGET else [])


def count() -> None:
    r = client()
    for key in _marks(int(r.incr(f"{PROBE_KEY}:n"))):
        r.set(key, repr(time.time()))


async def acount() -> None:
    r = aclient()
    for key in _marks(int(await r.incr(f"{PROBE_KEY}:n"))):
        await r.set(key, repr(time.time()))


def stamp(token: str) -> None:
    started = time.time()
    client().rpush(f"{PROBE_KEY}:lat:{token}", repr(started))


async def astamp(token: str) -> None:
    started = time.time()
    await aclient().rpush(f"{PROBE_KEY}:lat:{token}", repr(started))


def nap() -> None:
    time.sleep(NAP)
    count()


async def anap() -> None:
    await asyncio.sleep(NAP)
    await acount()
