"""Standby schedulers are visible: every elector pass announces its scheduler, the leader's
and the standbys' alike, so ``Operations.scheduler`` (behind ``GET /api/v1/scheduler`` and
``conveyor scheduler status``) lists the standbys; one that dies is forgotten after the lease
TTL, one that stops cleanly at once."""

from __future__ import annotations

from conveyor.coordination.protocol import Coordination
from conveyor.operations import Operations
from conveyor.scheduler.elector import Elector
from conveyor.store.sql import SqlStore

from .conftest import START, Clock, MakeElector


async def test_the_standbys_are_listed_beside_the_leader(
    store: SqlStore, coord: Coordination, leader: Elector, standby: Elector,
    make_elector: MakeElector, clock: Clock,
) -> None:
    ops = Operations(store.workers, store.stats, coord)
    state = await ops.scheduler()
    assert state.leader is not None and state.leader.holder == "leader"
    assert state.standby == {"standby": START}

    short = make_elector("short-lived", ttl=30.0)
    clock.now += 10
    await short.run_once(clock.now)
    await leader.run_once(clock.now)
    assert (await ops.scheduler()).standby == {"standby": START, "short-lived": START + 10}
    clock.now += 31  # short-lived died without a word: gone after its TTL
    assert (await ops.scheduler()).standby == {"standby": START}
    await standby.stop()
    assert (await ops.scheduler()).standby == {}
