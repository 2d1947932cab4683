"""Deterministic reproductions of what the fault run found (issue 6), one fault each.

A worker talks to Redis through the fault proxy with 6 s of latency, more than the client's
5 s socket timeout: its commands still run on the server, but only after the client gave up
on their answers (the same thing a frozen or overloaded Redis does). Every other process goes
straight to Redis.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from distributed.harness import cluster, wait_until
from faults.proxy import ProxyHub

pytestmark = pytest.mark.slow


@pytest.mark.timeout(120)
@pytest.mark.xfail(strict=True, reason=(
    "BUG: RedisWorkerQueues._take treats a lost reply of the 'fetch' script as 'nothing "
    "taken', but the script ran: the items sit in the worker's active list, the worker never "
    "runs them, the orphan sweep counts them as held and the recoverer leaves a live worker "
    "alone, so the task stays PENDING for as long as the worker lives (DESIGN.md §8.1)"))
def test_a_lost_fetch_reply_strands_no_task(tmp_path: Path) -> None:
    with ProxyHub() as hub, cluster(tmp_path) as c:
        redis_url = c.redis_url.rsplit("/", 1)
        host, port = redis_url[0].split("//")[1].split(":")
        proxy = hub.add("redis", host, int(port))
        c.api(wait=False)
        c.scheduler()
        # A long registry TTL keeps the worker registered while its heartbeats get no answer,
        # so the only thing that goes wrong is the lost reply.
        worker = c.worker(
            4, CONVEYOR_REDIS_URL=f"redis://{proxy.address}/{redis_url[1]}",
            CONVEYOR_WORKER__HEARTBEAT_TTL="60")
        c.wait_api()
        [worker_id] = c.wait_workers(1)
        c.wait_leader()
        with c.client() as client:
            assert client.submit("echo", {"warm": 1}).result(15) == {"warm": 1}
            proxy.set("delay", 6.0)
            task = client.submit("echo", {"n": 1})
            active = f"{c.prefix}worker:{worker_id}:active"

            def taken() -> bool:
                with c.redis() as r:
                    return bool(r.llen(active))

            wait_until(taken, 40, 0.05, "the worker's fetch to move the task to active")
            proxy.set("pass")
            healed = time.monotonic()
            try:
                wait_until(lambda: c.count("SUCCESS") >= 2, 20, 0.2, "the task to run")
            finally:
                with c.redis() as r:
                    print(f"\nafter {time.monotonic() - healed:.1f}s: task {task.id} is "
                          f"{client.get(task.id).status}; {active} = {r.lrange(active, 0, -1)}")
        assert worker.alive
