"""saq peer: its Redis queue with saq's defaults (concurrency 10 per worker).

Worker (started by the bench): ``saq peers.saq_app.settings --workers 2``.
"""

from __future__ import annotations

from typing import Any

from saq import Queue

from peers import _probe

queue = Queue.from_url(_probe.REDIS_URL)


async def stamp(ctx: dict[str, Any], *, token: str) -> None:
    await _probe.astamp(token)


async def noop(ctx: dict[str, Any]) -> None:
    await _probe.acount()


async def nap(ctx: dict[str, Any]) -> None:
    await _probe.anap()


settings = {"queue": queue, "functions": [stamp, noop, nap]}
_connected = False


async def _queue() -> Queue:
    global _connected
    if not _connected:
        await queue.connect()
        _connected = True
    return queue


async def asubmit_stamp(token: str) -> None:
    await (await _queue()).enqueue("stamp", token=token)


async def asubmit_one() -> None:
    await (await _queue()).enqueue("noop")


async def aenqueue(kind: str, count: int) -> None:
    q = await _queue()
    for _ in range(count):
        await q.enqueue(kind)
