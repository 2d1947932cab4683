"""streaq peer: a ``Worker`` on Redis streams with streaq's defaults (concurrency 16, asyncio).

Workers (started by the bench): ``streaq run peers.streaq_app:worker --workers 2``. The submit
side enters ``async with worker`` once, as streaq's docs do, and batches through
``worker.enqueue_many`` (a pipeline).
"""

from __future__ import annotations

from typing import Any

from streaq import Worker

from peers import _probe

worker = Worker(redis_url=_probe.REDIS_URL)


@worker.task
async def stamp(token: str) -> None:
    await _probe.astamp(token)


@worker.task
async def noop() -> None:
    await _probe.acount()


@worker.task
async def nap() -> None:
    await _probe.anap()


_entered = False


async def _ready() -> None:
    global _entered
    if not _entered:
        await worker.__aenter__()
        _entered = True


async def asubmit_stamp(token: str) -> None:
    await _ready()
    await stamp.enqueue(token)


async def asubmit_one() -> None:
    await _ready()
    await noop.enqueue()


async def asubmit_batch(size: int, task: Any = noop) -> None:
    await _ready()
    await worker.enqueue_many([task.enqueue() for _ in range(size)])


async def aenqueue(kind: str, count: int) -> None:
    for start in range(0, count, 1000):
        await asubmit_batch(min(1000, count - start), nap if kind == "nap" else noop)
