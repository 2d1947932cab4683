"""taskiq peer: taskiq-redis's ``RedisStreamBroker`` (consumer group on a Redis stream, acked
after the task) with its defaults, no result backend.

Workers (started by the bench): ``taskiq worker peers.taskiq_app:broker --workers 2`` (2 is
taskiq's default; 100 concurrent async tasks each). The submit side calls ``broker.startup()``
first, as taskiq's docs say a client must: it creates the consumer group, so tasks queued before
any worker runs are delivered.
"""

from __future__ import annotations

import asyncio

from taskiq_redis import RedisStreamBroker

from peers import _probe

broker = RedisStreamBroker(url=_probe.REDIS_URL)


@broker.task(task_name="bench.stamp")
async def stamp(token: str) -> None:
    await _probe.astamp(token)


@broker.task(task_name="bench.noop")
async def noop() -> None:
    await _probe.acount()


@broker.task(task_name="bench.nap")
async def nap() -> None:
    await _probe.anap()


_started = False


async def _ready() -> None:
    global _started
    if not _started:
        await broker.startup()
        _started = True


async def asubmit_stamp(token: str) -> None:
    await _ready()
    await stamp.kiq(token)


async def asubmit_one() -> None:
    await _ready()
    await noop.kiq()


async def aenqueue(kind: str, count: int) -> None:
    await _ready()
    task = nap if kind == "nap" else noop
    for start in range(0, count, 200):
        await asyncio.gather(*(task.kiq() for _ in range(min(200, count - start))))
