"""The worker: heartbeat, processor, finisher, canceller and reconciler around one capacity."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from functools import partial

from conveyor.catalog import Catalog
from conveyor.config import Settings
from conveyor.coordination.protocol import Coordination
from conveyor.duty import Duty, Supervisor, retrying
from conveyor.errors import ConfigError
from conveyor.executors.registry import ExecutorRegistry
from conveyor.outcomes import Outcomes
from conveyor.store.protocol import TaskStore
from conveyor.worker.canceller import Canceller
from conveyor.worker.capabilities import Capabilities
from conveyor.worker.completions import Completions
from conveyor.worker.finisher import Finisher
from conveyor.worker.heartbeat import Heartbeat
from conveyor.worker.processor import Processor
from conveyor.worker.reconciler import Reconciler

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        worker_id: str,
        settings: Settings,
        store: TaskStore,
        coordination: Coordination,
        catalog: Catalog,
        executors: ExecutorRegistry,
        outcomes: Outcomes,
    ) -> None:
        w = settings.worker
        self.id = worker_id
        self._settings = settings
        self._store = store
        self._coord = coordination
        self.executors = executors
        completions = Completions()
        self.processor = Processor(
            worker_id, store.moves, coordination.worker_queues, catalog, executors, outcomes,
            completions, capacity=w.capacity, poll_interval=w.queue_poll_interval,
        )
        self.finisher = Finisher(
            worker_id, outcomes, coordination.worker_queues, completions,
            self.processor.release,
        )
        self.capabilities = Capabilities(
            catalog.registrations, store.configs, executors.names, w.python_modules,
            w.supported_types,
        )
        self.heartbeat = Heartbeat(
            worker_id, coordination.registry, store.workers, capacity=w.capacity,
            prefetch=w.capacity if w.prefetch is None else w.prefetch,
            types=w.supported_types, weight=w.weight, interval=w.heartbeat_interval,
            ttl=w.heartbeat_ttl, load=lambda: self.processor.load,
            advertise=self.capabilities.types, on_drain=self._drain_requested,
        )
        self.canceller = Canceller(coordination.cancels, self.processor, interval=1.0)
        self.reconciler = Reconciler(
            worker_id, store.sweeps, coordination, lambda: self.processor.claimed, outcomes,
            w.heartbeat_interval,
        )
        self._supervisor = Supervisor(self.duties)
        self._hurry = asyncio.Event()
        self._owns_id = False  # until then, stop must not touch the queues of this id
        self._idling: asyncio.Task[None] | None = None

    def hurry(self) -> None:
        """Cut the grace period short: interrupt the running tasks now (a second Ctrl-C)."""
        self._hurry.set()

    @property
    def duties(self) -> list[Duty]:
        """Start order: be known before taking work; results are written by the finisher."""
        return [self.heartbeat, self.finisher, self.canceller, self.processor, self.reconciler]

    async def start(self) -> None:
        """Let the executors prepare (the python one warms a task process once the worker is
        quiet), refuse an id a live worker holds, register (waiting out a backend blip), then
        start the duties in order. Registering wakes the dispatcher, so work already queued
        arrives at once. A refused start closes the executors."""
        await self.executors.start()
        await retrying(self._check_unique, "checking the worker id")
        self._owns_id = True
        await retrying(lambda: self.heartbeat.run_once(time.time()), "registering the worker")
        self._supervisor.start()

    async def _check_unique(self) -> None:
        """Two live workers with one id would share one queue and one active list. An entry
        left by a dead process on this host (a stable ``worker.id`` restarted after a crash)
        is no conflict: its pid is gone."""
        for other in await self._coord.registry.live_workers():
            if other.worker_id != self.id:
                continue
            if other.host == self.heartbeat.info.host and not _pid_alive(other.pid):
                continue
            raise ConfigError(
                f"worker id {self.id!r} is already used by a live worker (host {other.host}, "
                f"pid {other.pid}); stop it, or give this one another worker.id"
            )

    async def wait(self) -> BaseException | None:
        """Return when a duty ends on its own (a bug); its exception says why."""
        return await self._supervisor.wait()

    async def stop(self) -> None:
        """Stop taking work, hand back what was not started, let running tasks finish within
        the grace period, write every outcome, then leave the registry.

        Taking no new work comes first (processor, then the reconciler that could re-queue
        what it fetched), so the hand-back sees a queue that no longer grows; the finisher
        stops only after the drain so every outcome of a running task is written; the
        heartbeat stops last, so the scheduler keeps seeing a live (draining) worker and
        does not reap the tasks it is still finishing.
        """
        if self._idling is not None:  # drained already: only its wait is left to end
            self._idling.cancel()
            await asyncio.gather(self._idling, return_exceptions=True)
        if not self._owns_id:  # refused at start: the id, its queue and record are another's
            await self.executors.close()
            return
        grace = self._settings.worker.graceful_shutdown_timeout
        self.heartbeat.draining = True
        await self.processor.stop()
        await self.reconciler.stop()
        handed = await self._coord.worker_queues.hand_back(self.id)
        if handed:
            log.info("handed back %d queued tasks", len(handed))
        await self._drain(grace)
        await self.canceller.stop()
        await self.finisher.stop()
        await self.finisher.run_once(time.time())
        await self.heartbeat.stop()
        await self._coord.registry.deregister(self.id)
        await self._store.workers.mark_worker(self.id, "stopped", time.time())
        await self.executors.close()

    def _drain_requested(self) -> None:
        if self._idling is None:
            self._idling = asyncio.create_task(self.idle(), name="worker-drain")

    async def idle(self) -> None:
        """A drain asked for from outside (the console, the API): take no new work, hand back
        what was queued here, and let the running tasks finish on their own (no grace period
        cuts them short); then stay registered, heartbeating as draining with nothing to do,
        until the process is stopped. The process keeps running because it may be a
        standalone one whose API and scheduler must go on.

        The heartbeat that published ``draining`` may have crossed a dispatch that still
        sent items here, so the queue is handed back once more a heartbeat later."""
        log.info("draining: taking no new work")
        self.heartbeat.draining = True
        await self.processor.stop()
        await self.reconciler.stop()
        hand_back = partial(self._coord.worker_queues.hand_back, self.id)
        await retrying(hand_back, "handing back the queued tasks")
        await asyncio.sleep(self._settings.worker.heartbeat_interval)
        await retrying(hand_back, "handing back the queued tasks")

    async def _drain(self, grace: float) -> None:
        """Drain within ``grace``, or at once when ``hurry`` is called meanwhile; interrupted
        attempts are recorded and run again, so nothing is lost either way."""
        drain = asyncio.create_task(self.processor.drain(grace))
        hurry = asyncio.create_task(self._hurry.wait())
        await asyncio.wait({drain, hurry}, return_when=asyncio.FIRST_COMPLETED)
        hurry.cancel()
        if not drain.done():
            await self.processor.drain(0)
        await drain


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        pass
    return True
