"""Fixtures for the duty tests: every duty built from its real parts, driven by ``run_once``.

The parts are the real ones (a migrated SQLite file, the in-process coordination, the catalog,
``Outcomes``, an elected ``Elector``), wired the way ``conveyor.scheduler`` and
``conveyor.worker`` wire them but without ``bootstrap``, so each test holds exactly the duty it
looks at. Time is a ``Clock`` the test moves: the coordination's TTLs, the elector's trust and
the duties' ``now`` all read it, so a 30-second heartbeat TTL passes in no time and every
deadline is exact.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conveyor.catalog import Catalog
from conveyor.config import Settings
from conveyor.coordination.local import LocalCoordination
from conveyor.coordination.protocol import Coordination
from conveyor.errors import PermanentError
from conveyor.executors.registry import ExecutorRegistry
from conveyor.ids import new_id
from conveyor.models import Backoff, Priority, QueueItem, Task, TaskLog, TaskStatus
from conveyor.outcomes import Outcomes
from conveyor.placement import queue_item
from conveyor.registrations import Registration
from conveyor.scheduler.elector import Elector
from conveyor.store.sql import SqlStore
from conveyor.worker.completions import Completions
from conveyor.worker.finisher import Finisher
from conveyor.worker.processor import Processor

START = 1_000_000.0
"""Where fake time starts: far from the wall clock, so a duty that reads the real clock
instead of the one it was given shows up as a wrong timestamp rather than passing by luck."""

WORKER = "w1"
JOB = "job"
BACKOFF = Backoff(base=10.0, factor=2.0, cap=100.0, jitter=0.0)
"""No jitter, so a retry is due at exactly ``now + 10 * 2**n`` and tests can say when."""


class Clock:
    """Time the test owns: read by the duties and the backend, moved by the test."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _never_called(**_: Any) -> None:
    raise AssertionError("the duty tests run tasks with the Scripted executor")


REGISTRATIONS: Mapping[str, Registration] = {
    JOB: Registration(JOB, _never_called, timeout=30.0, max_retries=2, backoff=BACKOFF),
}


class Scripted:
    """An executor whose task payload says what the attempt does: ``returns`` a value,
    ``raises`` a retryable error, fails ``permanent``-ly, ``blocks`` until it is cancelled
    (by its timeout, a cancel request or a shutdown), or returns a set, which no JSON can
    hold. It records the attempts it ran."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, int]] = []
        self._arrivals = asyncio.Condition()

    async def reached(self, count: int) -> None:
        """Return once ``count`` attempts in all have begun running here."""
        async with self._arrivals:
            await self._arrivals.wait_for(lambda: len(self.ran) >= count)

    async def execute(self, task: Task, config: Mapping[str, Any]) -> Any:
        async with self._arrivals:
            self.ran.append((task.id, task.attempt))
            self._arrivals.notify_all()
        payload = task.payload
        if "raises" in payload:
            raise RuntimeError(payload["raises"])
        if "permanent" in payload:
            raise PermanentError(payload["permanent"])
        if payload.get("blocks"):
            await asyncio.Event().wait()
        if "returns_set" in payload:
            return set(payload["returns_set"])
        return payload.get("returns")

    async def close(self) -> None:
        return None


class Tasks:
    """Rows made the way the service and the worker make them, at the clock's time, plus the
    scheduler's move of ids into a worker queue."""

    def __init__(self, store: SqlStore, coord: Coordination, leader: Elector,
                 clock: Clock) -> None:
        self._store, self._coord, self._leader, self._clock = store, coord, leader, clock

    async def pending(self, n: int = 1, **changes: Any) -> list[Task]:
        """``n`` PENDING rows, in the store only (as after a crash before the queue push)."""
        now = self._clock.now
        made = [
            replace(Task(
                id=new_id(now), task_type=JOB, priority=Priority.NORMAL, payload={"n": i},
                status=TaskStatus.PENDING, max_retries=2, timeout=30.0, created_at=now,
                run_at=now,
            ), **changes)
            for i in range(n)
        ]
        await self._store.tasks.insert(made)
        return made

    async def running(self, n: int = 1, worker_id: str = WORKER, **changes: Any) -> list[Task]:
        """``n`` rows started by ``worker_id`` now (PROCESSING, attempt 1)."""
        made = await self.pending(n, **changes)
        return await self._store.moves.start([t.id for t in made], worker_id, self._clock.now)

    async def deliver(self, tasks: Sequence[Task], worker_id: str = WORKER) -> list[QueueItem]:
        """Queue ``tasks`` and move them into ``worker_id``'s queue as the dispatcher does."""
        items = [queue_item(t) for t in tasks]
        await self._coord.queues.enqueue(items)
        epoch = self._leader.epoch
        assert epoch is not None
        assert await self._coord.queues.assign(epoch, [(i, worker_id) for i in items]) == len(
            items
        )
        return items

    async def get(self, task_id: str) -> Task:
        found = await self._store.tasks.get(task_id)
        assert found is not None
        return found

    async def logs(self, task_id: str) -> list[TaskLog]:
        return await self._store.tasks.logs(task_id)


async def queued_ids(coord: Coordination) -> list[str]:
    """Ids on the priority queues (not delayed, not in a worker queue), high first."""
    found: list[str] = []
    for priority in sorted(Priority, reverse=True):
        found += [i.task_id for i in await coord.queues.peek(priority, 10_000)]
    return found


async def delayed_count(coord: Coordination) -> int:
    return (await coord.queues.lengths())["delayed"]


async def settle(processor: Processor) -> None:
    """Wait for every attempt the processor runs now to end and hand in its outcome."""
    await asyncio.gather(*processor.runners(), return_exceptions=True)


class offline:
    """A table of the store is gone for the block, as if the database were unreachable for
    what uses it. ``task_logs`` by default: every move writes a log row, so every move fails
    inside its transaction and rolls back. Real SQLite errors, so the store's own conversion
    to ``BackendUnavailable`` is exercised. (Lower case: it reads ``async with offline(...)``.)
    """

    def __init__(self, store: SqlStore, table: str = "task_logs") -> None:
        self._store, self._table = store, table

    async def _rename(self, old: str, new: str) -> None:
        async with self._store.db.engine.begin() as conn:
            await conn.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))

    async def __aenter__(self) -> None:
        await self._rename(self._table, f"{self._table}_offline")

    async def __aexit__(self, *_: object) -> None:
        await self._rename(f"{self._table}_offline", self._table)


# -- the parts ------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database file for the session: each test gets a copy, which costs a
    file copy instead of a run of every migration."""
    path = tmp_path_factory.mktemp("template") / "c.db"

    async def migrate() -> None:
        template = SqlStore(str(path))
        await template.migrate()
        await template.close()

    asyncio.run(migrate())
    return path


@pytest.fixture
async def store(migrated: Path, tmp_path: Path) -> AsyncIterator[SqlStore]:
    shutil.copy(migrated, tmp_path / "c.db")
    built = SqlStore(str(tmp_path / "c.db"))
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def coord(clock: Clock) -> AsyncIterator[Coordination]:
    built = LocalCoordination(clock=clock).as_coordination()
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
def catalog(store: SqlStore, settings: Settings, clock: Clock) -> Catalog:
    return Catalog(store.configs, REGISTRATIONS, settings.tasks, clock=clock)


@pytest.fixture
def outcomes(store: SqlStore, coord: Coordination, catalog: Catalog,
             settings: Settings) -> Outcomes:
    return Outcomes(store.moves, coord.queues, catalog, settings.tasks)


MakeElector = Callable[..., Elector]


@pytest.fixture
def make_elector(store: SqlStore, coord: Coordination, clock: Clock) -> MakeElector:
    """Electors on the shared lease and epoch history; trust is measured on the fake clock."""

    def make(holder: str, ttl: float = 600.0) -> Elector:
        return Elector(coord.lease, store.epochs, holder, ttl, ttl / 4, monotonic=clock)

    return make


@pytest.fixture
async def leader(make_elector: MakeElector, clock: Clock) -> Elector:
    """The scheduler that took the lease with its first pass. Its lease outlives any test's
    clock moves (ten minutes), so scheduler tests act under it unless they take it away."""
    elector = make_elector("leader")
    await elector.run_once(clock.now)
    assert elector.epoch is not None
    return elector


@pytest.fixture
async def standby(leader: Elector, make_elector: MakeElector, clock: Clock) -> Elector:
    """A second scheduler that found the lease taken: every duty built on it must do nothing."""
    elector = make_elector("standby")
    await elector.run_once(clock.now)
    assert elector.epoch is None
    return elector


@pytest.fixture
def tasks(store: SqlStore, coord: Coordination, leader: Elector, clock: Clock) -> Tasks:
    return Tasks(store, coord, leader, clock)


# -- the worker's processor and finisher, shared by their tests and the canceller's ---------


@pytest.fixture
def executor() -> Scripted:
    return Scripted()


@pytest.fixture
def completions() -> Completions:
    return Completions()


@pytest.fixture
async def processor(
    store: SqlStore, coord: Coordination, catalog: Catalog, outcomes: Outcomes,
    executor: Scripted, completions: Completions, clock: Clock,
) -> AsyncIterator[Processor]:
    """Capacity 3; a 10 ms poll, so a pass over an empty queue returns at once."""
    built = Processor(
        WORKER, store.moves, coord.worker_queues, catalog,
        ExecutorRegistry({"python": executor}), outcomes, completions,
        capacity=3, poll_interval=0.01, clock=clock,
    )
    try:
        yield built
    finally:
        await built.drain(0.0)


@pytest.fixture
def finisher(outcomes: Outcomes, coord: Coordination, completions: Completions,
             processor: Processor) -> Finisher:
    return Finisher(WORKER, outcomes, coord.worker_queues, completions, processor.release)
