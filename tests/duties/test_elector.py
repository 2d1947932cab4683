"""Elector: who may act as the scheduler, and under which fencing epoch.

Its ``epoch`` is what every other scheduler duty checks before acting, so these tests pin
down when it is set and, above all, when it is withdrawn: trust ends at 80 % of the TTL after
the last renewal was sent, before the lease can run out on the backend.
"""

from __future__ import annotations

import sqlalchemy as sa

from conveyor.coordination.protocol import Coordination
from conveyor.store.schema import leader_history
from conveyor.store.sql import SqlStore

from .conftest import Clock, MakeElector

TTL = 10.0


async def test_the_first_pass_takes_the_lease_and_records_its_epoch_first(
    make_elector: MakeElector, store: SqlStore, coord: Coordination, clock: Clock
) -> None:
    elector = make_elector("s1", TTL)
    await elector.run_once(clock.now)
    assert elector.epoch == 1 and await coord.lease.current() == elector.current
    [row] = await store.db.rows(sa.select(leader_history))
    assert (row["epoch"], row["holder"]) == (1, "s1")


async def test_a_new_lease_starts_above_every_epoch_the_store_has_seen(
    make_elector: MakeElector, store: SqlStore, clock: Clock
) -> None:
    """The coordination backend lost its counter (a fresh in-process one, here)."""
    await store.epochs.record_epoch(41, "before-the-restart", clock.now)
    elector = make_elector("s1", TTL)
    await elector.run_once(clock.now)
    assert elector.epoch == 42


async def test_a_second_scheduler_stands_by_while_the_lease_is_held(
    make_elector: MakeElector, clock: Clock
) -> None:
    first, second = make_elector("s1", TTL), make_elector("s2", TTL)
    await first.run_once(clock.now)
    await second.run_once(clock.now)
    assert second.epoch is None and second.current is None and first.epoch == 1


async def test_trust_ends_at_four_fifths_of_the_ttl_without_a_renewal(
    make_elector: MakeElector, coord: Coordination, clock: Clock
) -> None:
    """The lease itself is still held for 2 s more: a leader that cannot renew stops first."""
    elector = make_elector("s1", TTL)
    await elector.run_once(clock.now)
    clock.now += 7.5
    assert elector.epoch == 1
    clock.now += 0.5  # 0.8 * TTL
    assert elector.epoch is None
    assert await coord.lease.current() == elector.current


async def test_each_renewal_extends_trust_from_when_it_was_sent(
    make_elector: MakeElector, clock: Clock
) -> None:
    elector = make_elector("s1", TTL)
    await elector.run_once(clock.now)
    for _ in range(5):  # 15 s in all, longer than the TTL
        clock.now += 3.0
        await elector.run_once(clock.now)
    clock.now += 7.5
    assert elector.epoch == 1
    clock.now += 0.5
    assert elector.epoch is None


async def test_a_lease_lost_to_another_scheduler_is_given_up(
    make_elector: MakeElector, clock: Clock
) -> None:
    """It could not renew in time (paused, partitioned); a standby took over meanwhile."""
    first, second = make_elector("s1", TTL), make_elector("s2", TTL)
    await first.run_once(clock.now)
    clock.now += TTL
    await second.run_once(clock.now)
    await first.run_once(clock.now)
    assert first.current is None and first.epoch is None
    assert second.epoch == 2


async def test_a_lapsed_lease_nobody_took_is_taken_again_with_a_new_epoch(
    make_elector: MakeElector, clock: Clock
) -> None:
    elector = make_elector("s1", TTL)
    await elector.run_once(clock.now)
    clock.now += TTL
    await elector.run_once(clock.now)
    assert elector.epoch == 2


async def test_a_demoted_leader_waits_for_its_old_lease_to_lapse(
    make_elector: MakeElector, clock: Clock
) -> None:
    """A script refused its epoch: someone else may hold the current one, so it does not
    take the lease back while the backend still shows one."""
    elector = make_elector("s1", TTL)
    await elector.run_once(clock.now)
    elector.demote()
    assert elector.epoch is None
    clock.now += 3.0
    await elector.run_once(clock.now)
    assert elector.epoch is None
    clock.now += TTL
    await elector.run_once(clock.now)
    assert elector.epoch == 2


async def test_stopping_releases_the_lease_for_a_standby_at_once(
    make_elector: MakeElector, coord: Coordination, clock: Clock
) -> None:
    first, second = make_elector("s1", TTL), make_elector("s2", TTL)
    await first.run_once(clock.now)
    await first.stop()
    assert first.epoch is None and await coord.lease.current() is None
    await second.run_once(clock.now)
    assert second.epoch == 2
