"""What a peer's benchmark task records, shared by every peer (stdlib + redis-py only, since it
runs inside each peer's own virtualenv).

- ``stamp(token)``: the moment the task started, pushed to ``<key>:lat:<token>`` at once, so the
  driver that submitted it (blocked on BLPOP) learns the start time.
- ``tick()``: count a finished no-op task. Long-lived worker processes count in memory and a
  daemon thread flushes ``count first last`` to one hash field per process every 25 ms, so the
  measured peer pays no Redis round trip per task. Peers that fork a process per job (RQ) set
  ``BENCH_PROBE_DIRECT=1``: each task writes its own field at once.

Environment: ``BENCH_REDIS_URL`` (the peers' Redis DB) and ``BENCH_PROBE_KEY`` (the hash).
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import redis

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
PROBE_KEY = os.environ.get("BENCH_PROBE_KEY", "benchpeer:probe")
DIRECT = os.environ.get("BENCH_PROBE_DIRECT") == "1"
FLUSH_EVERY = 0.025

_lock = threading.Lock()
_state: dict[str, float | int | None] = {"pid": None, "count": 0, "first": None, "last": None}
_client: redis.Redis | None = None
_client_pid: int | None = None


def client() -> redis.Redis:
    """One connection per process (re-made after a fork)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(REDIS_URL)
        _client_pid = os.getpid()
    return _client


def stamp(token: str) -> None:
    started = time.time()
    client().rpush(f"{PROBE_KEY}:lat:{token}", repr(started))


def tick() -> None:
    now = time.time()
    if DIRECT:
        client().hset(PROBE_KEY, f"{os.getpid()}-{uuid.uuid4().hex}", f"1 {now!r} {now!r}")
        return
    with _lock:
        if _state["pid"] != os.getpid():  # first task in this process (or after a fork)
            _state.update(pid=os.getpid(), count=0, first=now, last=now)
            threading.Thread(target=_flusher, name="bench-probe", daemon=True).start()
        _state["count"] = int(_state["count"] or 0) + 1
        _state["last"] = now


def _flusher() -> None:
    pid = os.getpid()
    written = -1
    while True:
        time.sleep(FLUSH_EVERY)
        with _lock:
            count, first, last = _state["count"], _state["first"], _state["last"]
        if count != written:
            client().hset(PROBE_KEY, str(pid), f"{count} {first!r} {last!r}")
            written = int(count or 0)
