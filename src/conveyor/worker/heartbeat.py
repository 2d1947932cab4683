"""Heartbeat: keep this worker's registry entry alive and its SQL record current.

The SQL record matters too: the recoverer only declares a worker dead when *both* the live
registry and the durable record say so, which keeps a Redis that lost its data from making
every running task look orphaned.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace

from conveyor.coordination.protocol import Registry
from conveyor.duty import Duty
from conveyor.errors import BackendUnavailable
from conveyor.models import WorkerInfo
from conveyor.store.protocol import WorkerRecords

log = logging.getLogger(__name__)


class Heartbeat(Duty):
    name = "heartbeat"

    def __init__(
        self,
        worker_id: str,
        registry: Registry,
        workers: WorkerRecords,
        *,
        capacity: int,
        prefetch: int,
        types: tuple[str, ...],
        weight: float,
        interval: float,
        ttl: float,
        load: Callable[[], int],
        advertise: Callable[[], Awaitable[tuple[str, ...]]] | None = None,
        on_drain: Callable[[], None] | None = None,
    ) -> None:
        """``advertise``, when given, recomputes the types at each beat (task configs change
        while the worker runs); ``types`` is what it advertises until then. ``on_drain`` is
        called once, at the beat that finds a drain request naming this process (the
        console's or ``POST /api/v1/workers/{id}/drain``)."""
        super().__init__(interval)
        self._registry = registry
        self._workers = workers
        self._ttl = ttl
        self._load = load
        self._advertise = advertise
        self._on_drain = on_drain
        self.draining = False
        self.info = WorkerInfo(
            worker_id, socket.gethostname(), os.getpid(), capacity, types, weight,
            started_at=self.clock(), prefetch=prefetch,
        )

    async def run_once(self, now: float) -> None:
        if self._advertise is not None:
            try:
                self.info = replace(self.info, types=await self._advertise())
            except BackendUnavailable as exc:  # keep the last types: the live entry matters more
                log.warning("could not read the task configs, advertising the last types: %s", exc)
        if self._on_drain is not None and not self.draining and (
                await self._registry.drain_requested(self.info.worker_id) == self.info.started_at):
            self.draining = True  # published by this very beat
            self._on_drain()
        info = replace(self.info, last_heartbeat=now, load=self._load(), draining=self.draining)
        await self._registry.heartbeat(info, self._ttl)
        await self._workers.record_workers([info], "alive", now)
