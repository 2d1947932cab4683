"""TimeoutSweeper: a PROCESSING attempt past ``started_at + timeout + grace`` becomes TIMEOUT,
then is retried after its backoff while retries remain. It is the net under the worker's own
timeout, so it must never touch an attempt still inside its deadline or one already ended."""

from __future__ import annotations

import pytest

from conveyor.coordination.protocol import Coordination
from conveyor.models import TaskStatus
from conveyor.outcomes import Outcomes
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.timeouts import TimeoutSweeper
from conveyor.store.protocol import Outcome
from conveyor.store.sql import SqlStore

from .conftest import Clock, Tasks, delayed_count, queued_ids

GRACE = 5.0


@pytest.fixture
def sweeper(store: SqlStore, outcomes: Outcomes, leader: Elector) -> TimeoutSweeper:
    return TimeoutSweeper(store.sweeps, outcomes, leader, interval=5.0, grace=GRACE, batch=500)


async def test_an_attempt_is_left_alone_until_its_deadline_and_grace_have_passed(
    sweeper: TimeoutSweeper, tasks: Tasks, clock: Clock
) -> None:
    """The deadline is exclusive: at exactly ``started + 30 + 5`` the worker may still answer."""
    [t] = await tasks.running(timeout=30.0)
    clock.now += 30.0 + GRACE
    await sweeper.run_once(clock.now)
    assert (await tasks.get(t.id)).status == TaskStatus.PROCESSING
    clock.now += 0.5
    await sweeper.run_once(clock.now)
    assert (await tasks.get(t.id)).status == TaskStatus.PENDING


async def test_an_overdue_attempt_with_retries_left_goes_to_the_delayed_set_with_backoff(
    sweeper: TimeoutSweeper, tasks: Tasks, coord: Coordination, leader: Elector, clock: Clock
) -> None:
    [t] = await tasks.running(max_retries=2)
    clock.now += 36.0
    await sweeper.run_once(clock.now)
    after = await tasks.get(t.id)
    assert (after.status, after.retry_count, after.attempt) == (TaskStatus.PENDING, 1, 1)
    assert after.run_at == clock.now + 10.0  # BACKOFF: 10 s before the first retry
    assert await queued_ids(coord) == [] and await delayed_count(coord) == 1
    timeout_log = (await tasks.logs(t.id))[-2]
    assert timeout_log.to_status == TaskStatus.TIMEOUT and timeout_log.epoch == leader.epoch
    assert "deadline passed" in timeout_log.message


async def test_the_backoff_grows_with_the_retries_already_spent(
    sweeper: TimeoutSweeper, tasks: Tasks, clock: Clock
) -> None:
    [t] = await tasks.running(max_retries=3, retry_count=2)
    clock.now += 36.0
    await sweeper.run_once(clock.now)
    after = await tasks.get(t.id)
    assert after.retry_count == 3 and after.run_at == clock.now + 40.0  # 10 * 2**2


async def test_an_overdue_attempt_without_retries_left_ends_as_timeout(
    sweeper: TimeoutSweeper, tasks: Tasks, coord: Coordination, clock: Clock
) -> None:
    [t] = await tasks.running(max_retries=1, retry_count=1)
    clock.now += 36.0
    await sweeper.run_once(clock.now)
    after = await tasks.get(t.id)
    assert (after.status, after.finished_at) == (TaskStatus.TIMEOUT, clock.now)
    assert await queued_ids(coord) == [] and await delayed_count(coord) == 0


async def test_only_processing_rows_are_timed_out(
    sweeper: TimeoutSweeper, tasks: Tasks, store: SqlStore, clock: Clock
) -> None:
    """A finished attempt keeps its ``started_at`` but is no longer anyone's to time out; a
    PENDING row has no running attempt at all."""
    [done, overdue] = await tasks.running(2)
    [waiting] = await tasks.pending()
    await store.moves.finish([Outcome(done.id, 1, TaskStatus.SUCCESS, result=1)], clock.now)
    clock.now += 36.0
    await sweeper.run_once(clock.now)
    assert (await tasks.get(done.id)).status == TaskStatus.SUCCESS
    assert (await tasks.get(waiting.id)).status == TaskStatus.PENDING
    assert (await tasks.get(overdue.id)).retry_count == 1


async def test_each_task_is_held_to_its_own_timeout(
    sweeper: TimeoutSweeper, tasks: Tasks, clock: Clock
) -> None:
    [short] = await tasks.running(timeout=10.0)
    [long] = await tasks.running(timeout=60.0)
    clock.now += 20.0
    await sweeper.run_once(clock.now)
    assert (await tasks.get(short.id)).status == TaskStatus.PENDING
    assert (await tasks.get(long.id)).status == TaskStatus.PROCESSING


async def test_a_late_answer_from_the_timed_out_attempt_is_refused(
    sweeper: TimeoutSweeper, tasks: Tasks, outcomes: Outcomes, clock: Clock
) -> None:
    """The worker that hung comes back with a result: the attempt it reports is gone."""
    [t] = await tasks.running()
    clock.now += 36.0
    await sweeper.run_once(clock.now)
    late = Outcome(t.id, t.attempt, TaskStatus.SUCCESS, result="late")
    assert await outcomes.record([late], clock.now) == []
    assert (await tasks.get(t.id)).status == TaskStatus.PENDING


async def test_one_pass_times_out_at_most_one_batch(
    store: SqlStore, outcomes: Outcomes, leader: Elector, tasks: Tasks, clock: Clock
) -> None:
    """The rest wait for the next pass (an interval later), which bounds one pass's work."""
    sweeper = TimeoutSweeper(store.sweeps, outcomes, leader, interval=5.0, grace=GRACE, batch=2)
    started = await tasks.running(3)
    clock.now += 36.0
    await sweeper.run_once(clock.now)
    statuses = [(await tasks.get(t.id)).status for t in started]
    assert statuses.count(TaskStatus.PENDING) == 2
    await sweeper.run_once(clock.now)
    assert {(await tasks.get(t.id)).status for t in started} == {TaskStatus.PENDING}


async def test_a_scheduler_without_the_lease_does_nothing(
    store: SqlStore, outcomes: Outcomes, standby: Elector, tasks: Tasks, clock: Clock
) -> None:
    sweeper = TimeoutSweeper(store.sweeps, outcomes, standby, interval=5.0, grace=GRACE, batch=9)
    [t] = await tasks.running()
    clock.now += 36.0
    await sweeper.run_once(clock.now)
    assert (await tasks.get(t.id)).status == TaskStatus.PROCESSING
