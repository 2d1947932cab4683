"""Canceller: a cancel request for a task running here interrupts it, whether it arrives on
the push channel or is found among the flags on the periodic check (a message lost while the
connection was down); a request for anything else changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from conveyor.coordination.protocol import AttemptRef, Coordination
from conveyor.models import Task, TaskStatus
from conveyor.worker.canceller import Canceller
from conveyor.worker.completions import Completions
from conveyor.worker.processor import Processor

from .conftest import Clock, Scripted, Tasks

FLAG_TTL = 60.0


@pytest.fixture
async def canceller(coord: Coordination, processor: Processor) -> AsyncIterator[Canceller]:
    built = Canceller(coord.cancels, processor, interval=1.0)
    try:
        yield built
    finally:
        await built.stop()


async def running(tasks: Tasks, processor: Processor, executor: Scripted, clock: Clock,
                  n: int = 1) -> list[Task]:
    """``n`` tasks delivered, started and blocked in the executor until interrupted."""
    made = await tasks.pending(n, payload={"blocks": True})
    await tasks.deliver(made)
    await processor.run_once(clock.now)
    await executor.reached(n)
    return made


def ended(completions: Completions) -> dict[str, TaskStatus]:
    return {o.task_id: o.status for o, _ in completions.take(100) if o is not None}


async def test_a_flag_found_on_the_periodic_check_interrupts_the_task(
    canceller: Canceller, coord: Coordination, tasks: Tasks, processor: Processor,
    executor: Scripted, completions: Completions, clock: Clock,
) -> None:
    """Requested before the listener existed, so only the flag can tell."""
    [target, other] = await running(tasks, processor, executor, clock, 2)
    await coord.cancels.request(AttemptRef(target.id, 1), FLAG_TTL)
    await canceller.run_once(clock.now)
    await processor.running[target.id].runner
    assert set(processor.running) == {other.id}
    assert ended(completions) == {target.id: TaskStatus.CANCELLED}


async def test_a_pushed_request_interrupts_the_task(
    canceller: Canceller, coord: Coordination, tasks: Tasks, processor: Processor,
    executor: Scripted, completions: Completions, clock: Clock,
) -> None:
    """Requests come in order: by the time the target ends, the one for a task this worker
    does not run has been seen too, and changed nothing."""
    [target, other] = await running(tasks, processor, executor, clock, 2)
    await canceller.run_once(clock.now)  # starts the listener
    await asyncio.sleep(0)  # one turn of the loop: the listener subscribes
    await coord.cancels.request(AttemptRef("not-here", 1), FLAG_TTL)
    await coord.cancels.request(AttemptRef(target.id, 1), FLAG_TTL)
    await processor.running[target.id].runner
    assert set(processor.running) == {other.id}
    assert ended(completions) == {target.id: TaskStatus.CANCELLED}


async def test_an_expired_flag_is_ignored(
    canceller: Canceller, coord: Coordination, tasks: Tasks, processor: Processor,
    executor: Scripted, clock: Clock,
) -> None:
    [t] = await running(tasks, processor, executor, clock)
    await coord.cancels.request(AttemptRef(t.id, 1), FLAG_TTL)
    clock.now += FLAG_TTL
    await canceller.run_once(clock.now)
    assert set(processor.running) == {t.id}
