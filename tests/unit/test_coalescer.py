"""The coalescer groups concurrent callers into one write, and a caller cancelled while it
waits stops neither that write nor the other callers' results."""

from __future__ import annotations

import asyncio

from conveyor.coalescer import Coalescer


async def test_callers_arriving_during_a_write_share_the_next_one() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        writes.append(items)
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    coalescer: Coalescer[int, int] = Coalescer(write)
    first = asyncio.create_task(coalescer.submit([1]))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(coalescer.submit([n, n + 1])) for n in (2, 4)]
    assert await first == [10]
    assert [await r for r in rest] == [[20, 30], [40, 50]]
    assert writes == [[1], [2, 3, 4, 5]]


async def test_a_cancelled_caller_leaves_the_write_and_the_others_alone() -> None:
    written: list[int] = []
    gate = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        await gate.wait()
        written.extend(items)
        return items

    coalescer: Coalescer[int, int] = Coalescer(write)
    gone = asyncio.create_task(coalescer.submit([1]))
    kept = asyncio.create_task(coalescer.submit([2]))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await kept == [2]
    assert gone.cancelled()
    assert written == [1, 2]
