"""``LeaderLease``: the scheduler lease, its rising epoch and the leader's status.

See ``coordination_support`` for how the contract runs over both backends.
"""

from __future__ import annotations

import asyncio

from conveyor.coordination.protocol import Coordination
from conveyor.models import Lease


async def test_lease_acquire_renew_release_with_rising_epoch(coord: Coordination) -> None:
    first = await coord.lease.acquire("a", 5)
    assert first == Lease("a", 1)
    assert await coord.lease.acquire("b", 5) is None
    assert await coord.lease.current() == first
    assert await coord.lease.renew(first, 5)
    assert not await coord.lease.renew(Lease("b", 1), 5)
    await coord.lease.release(Lease("b", 1))
    assert await coord.lease.current() == first
    await coord.lease.release(first)
    assert await coord.lease.current() is None
    assert not await coord.lease.renew(first, 5)
    second = await coord.lease.acquire("b", 5)
    assert second == Lease("b", 2)


async def test_acquire_starts_above_the_epoch_floor(coord: Coordination) -> None:
    lease = await coord.lease.acquire("a", 5, min_epoch=41)
    assert lease == Lease("a", 42)
    await coord.lease.release(lease)
    assert await coord.lease.acquire("b", 5) == Lease("b", 43)


async def test_leader_status_is_published_and_expires(coord: Coordination) -> None:
    assert await coord.lease.status() == {}
    await coord.lease.publish_status({"dispatcher": 1.5, "promoter": 2.25}, 0.3)
    assert await coord.lease.status() == {"dispatcher": 1.5, "promoter": 2.25}
    await coord.lease.publish_status({"dispatcher": 3.0}, 0.3)
    assert await coord.lease.status() == {"dispatcher": 3.0}
    await asyncio.sleep(0.4)
    assert await coord.lease.status() == {}


async def test_lease_expires_and_the_next_holder_gets_a_higher_epoch(coord: Coordination) -> None:
    first = await coord.lease.acquire("a", 0.2)
    assert first is not None
    assert await coord.lease.renew(first, 0.3)
    await asyncio.sleep(0.2)
    assert await coord.lease.current() == first  # the renewal pushed expiry out
    await asyncio.sleep(0.2)
    assert await coord.lease.current() is None
    assert not await coord.lease.renew(first, 5)
    second = await coord.lease.acquire("b", 5)
    assert second is not None and second.epoch == first.epoch + 1


async def test_holder_names_may_contain_the_separator(coord: Coordination) -> None:
    lease = await coord.lease.acquire("host|1234|x", 5)
    assert lease is not None
    assert await coord.lease.current() == lease


async def test_schedulers_announce_expire_and_withdraw(coord: Coordination) -> None:
    assert await coord.lease.schedulers() == {}
    await coord.lease.announce("s1", 10.5, 5)
    await coord.lease.announce("s2|host", 11.0, 0.2)
    assert await coord.lease.schedulers() == {"s1": 10.5, "s2|host": 11.0}
    await coord.lease.announce("s1", 12.25, 5)  # again: the newer time
    await asyncio.sleep(0.3)
    assert await coord.lease.schedulers() == {"s1": 12.25}  # s2 died without withdrawing
    await coord.lease.withdraw("s1")
    await coord.lease.withdraw("never-announced")
    assert await coord.lease.schedulers() == {}
