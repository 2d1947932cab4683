"""Conveyor as the bench measures every peer: task bodies that run the probe (one ``INCR``),
registered on a ``Conveyor`` the workers load (``--app peers.conveyor_app:app --app-dir bench``),
and the submit side over the HTTP API (``BENCH_CONVEYOR_URL``): kept-alive connections, one
task per ``POST /api/v1/tasks``, batches through ``POST /api/v1/tasks/batch``.

The bodies are async, as arq's, saq's, streaq's and taskiq's are: they run on the worker's
event loop (a plain function would run in a task process, one IPC round trip per task).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from conveyor import Conveyor
from peers import _http, _probe

URL = os.environ.get("BENCH_CONVEYOR_URL", "http://127.0.0.1:8000")
CREATE, BATCH = "/api/v1/tasks", "/api/v1/tasks/batch"
app = Conveyor(URL)


@app.task("bench.stamp", timeout=30)
async def stamp(token: str) -> None:
    await _probe.astamp(token)


@app.task("bench.count", timeout=30)
async def count() -> None:
    await _probe.acount()


@app.task("bench.nap", timeout=30)
async def nap() -> None:
    await _probe.anap()


KINDS = {"noop": "bench.count", "nap": "bench.nap"}
_local = threading.local()
_pool: _http.AsyncPool | None = None


def _conn() -> _http.SyncConnection:
    if getattr(_local, "conn", None) is None:
        _local.conn = _http.SyncConnection(URL)
    conn: _http.SyncConnection = _local.conn
    return conn


def _created(status: int, body: Any) -> None:
    if status != 201:
        raise RuntimeError(f"Conveyor answered {status}: {body}")


def submit_stamp(token: str) -> None:
    _created(*_conn().post(CREATE, {"task_type": "bench.stamp", "payload": {"token": token}}))


def submit_one() -> None:
    _created(*_conn().post(CREATE, {"task_type": "bench.count"}))


def submit_batch(size: int) -> None:
    _created(*_conn().post(BATCH, {"tasks": [{"task_type": "bench.count"}] * size}))


async def asubmit_one() -> None:
    global _pool
    if _pool is None:
        _pool = _http.AsyncPool(URL)
    status = await _pool.post(CREATE, {"task_type": "bench.count"})
    _created(status, None)


def enqueue(kind: str, count: int) -> None:
    for start in range(0, count, 1000):
        size = min(1000, count - start)
        _created(*_conn().post(BATCH, {"tasks": [{"task_type": KINDS[kind]}] * size}))
