"""``CancelSignals``: cancel flags per attempt with a TTL and the live stream of cancels.

See ``coordination_support`` for how the contract runs over both backends.
"""

from __future__ import annotations

import asyncio
import contextlib

from conveyor.coordination.protocol import AttemptRef, Coordination

T1, T2, T3 = AttemptRef("t1", 1), AttemptRef("t2", 1), AttemptRef("t3", 1)


async def test_cancel_flags_with_ttl(coord: Coordination) -> None:
    await coord.cancels.request(T1, 5)
    await coord.cancels.request(T2, 0.1)
    assert await coord.cancels.requested([T1, T2, T3]) == {T1, T2}
    await asyncio.sleep(0.2)
    assert await coord.cancels.requested([T1, T2, T3]) == {T1}
    assert await coord.cancels.requested([]) == set()


async def test_a_flag_names_one_attempt(coord: Coordination) -> None:
    """The flag of attempt 1 outlives it; the retry (attempt 2) must not read it as its own."""
    await coord.cancels.request(AttemptRef("t1", 1), 60)
    assert await coord.cancels.requested([AttemptRef("t1", 2)]) == set()
    assert await coord.cancels.requested([AttemptRef("t1", 1)]) == {AttemptRef("t1", 1)}


async def test_listen_receives_published_cancels(coord: Coordination) -> None:
    stream = coord.cancels.listen()
    async with contextlib.aclosing(stream):  # type: ignore[type-var]
        first = asyncio.ensure_future(anext(stream))
        # The subscription starts on first iteration; repeat until it is certainly live.
        for _ in range(20):
            await coord.cancels.request(T1, 5)
            done, _ = await asyncio.wait({first}, timeout=0.1)
            if done:
                break
        assert first.result() == T1
        await coord.cancels.request(AttemptRef("t2", 7), 5)
        assert await asyncio.wait_for(anext(stream), 1) in {T1, AttemptRef("t2", 7)}


def test_attempt_refs_round_trip() -> None:
    ref = AttemptRef("01M8RNTC2DK0SABCM88V8KT2HN", 12)
    assert AttemptRef.decode(ref.encode()) == ref
