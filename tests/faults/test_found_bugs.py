"""Deterministic reproductions of what the fault run found (issue 6), one bug each; both fixed,
kept as regression tests.

1. The elector died when it was demoted while a renewal was in flight (a scheduler process
exited); it now renews the lease it read before the await.
2. A worker talks to Redis through the fault proxy with 6 s of latency, more than the client's
5 s socket timeout: its commands still run on the server, but only after the client gave up
on their answers (the same thing a frozen or overloaded Redis does). Every other process goes
straight to Redis. The fetched ids used to stay in the worker's active list for as long as
the worker lived; the worker's reconciler now hands them back.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from conveyor.models import Lease
from conveyor.scheduler.elector import Elector
from tests.distributed.harness import cluster, wait_until
from tests.faults.proxy import ProxyHub


class SlowLease:
    """A lease backend whose renewal answers "lost" only when the test says so."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()

    async def renew(self, lease: Lease, ttl: float) -> bool:
        await self.answer.wait()
        return False

    async def current(self) -> None:
        return None

    async def acquire(self, holder: str, ttl: float, floor: int) -> None:
        return None

    async def release(self, lease: Lease) -> None:
        return None

    async def announce(self, holder: str, seen: float, ttl: float) -> None:
        return None

    async def withdraw(self, holder: str) -> None:
        return None


class History:
    async def max_epoch(self) -> int:
        return 0

    async def record_epoch(self, epoch: int, holder: str, now: float) -> None:
        return None


async def test_a_demotion_during_a_renewal_does_not_kill_the_elector() -> None:
    lease = SlowLease()
    elector = Elector(lease, History(), "s1", ttl=1.0, renew_interval=0.3)  # type: ignore[arg-type]
    elector.current = Lease("s1", 7)
    renewing = asyncio.create_task(elector.run_once(time.time()))
    await asyncio.sleep(0.01)
    elector.demote()  # a Redis script refused epoch 7 meanwhile
    lease.answer.set()
    await renewing
    assert elector.current is None


@pytest.mark.slow
@pytest.mark.timeout(120)
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
