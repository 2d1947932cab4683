"""``CancelSignals``: cancel flags with a TTL and the live stream of cancelled ids.

See ``coordination_support`` for how the contract runs over both backends.
"""

from __future__ import annotations

import asyncio
import contextlib

from conveyor.coordination.protocol import Coordination


async def test_cancel_flags_with_ttl(coord: Coordination) -> None:
    await coord.cancels.request("t1", 5)
    await coord.cancels.request("t2", 0.1)
    assert await coord.cancels.requested(["t1", "t2", "t3"]) == {"t1", "t2"}
    await asyncio.sleep(0.2)
    assert await coord.cancels.requested(["t1", "t2", "t3"]) == {"t1"}
    assert await coord.cancels.requested([]) == set()


async def test_listen_receives_published_cancels(coord: Coordination) -> None:
    stream = coord.cancels.listen()
    async with contextlib.aclosing(stream):  # type: ignore[type-var]
        first = asyncio.ensure_future(anext(stream))
        # The subscription starts on first iteration; repeat until it is certainly live.
        for _ in range(20):
            await coord.cancels.request("t1", 5)
            done, _ = await asyncio.wait({first}, timeout=0.1)
            if done:
                break
        assert first.result() == "t1"
        await coord.cancels.request("t2", 5)
        assert await asyncio.wait_for(anext(stream), 1) in {"t1", "t2"}
