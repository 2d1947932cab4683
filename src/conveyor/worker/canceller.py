"""Canceller: interrupt running attempts whose cancel was requested.

A request names the attempt it was made for; one that arrives after that attempt ended (a late
pub/sub message, a flag still alive) finds a different attempt running and is ignored.

Pub/sub brings requests within milliseconds; a periodic check of the flags catches any message
lost while the connection was down.
"""

from __future__ import annotations

import asyncio
import logging

from conveyor.coordination.protocol import AttemptRef, CancelSignals
from conveyor.duty import Duty, sleep_unless
from conveyor.errors import BackendUnavailable
from conveyor.worker.processor import Processor, StopReason

log = logging.getLogger(__name__)


class Canceller(Duty):
    name = "canceller"

    def __init__(self, signals: CancelSignals, processor: Processor, interval: float) -> None:
        super().__init__(interval)
        self._signals = signals
        self._processor = processor
        self._listener: asyncio.Task[None] | None = None

    async def run_once(self, now: float) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="cancel-listener")
        running = self._processor.attempts()
        if running:
            for attempt in await self._signals.requested(running):
                self._interrupt(attempt)

    def _interrupt(self, attempt: AttemptRef) -> None:
        self._processor.interrupt(attempt.task_id, StopReason.CANCELLED, attempt.attempt)

    async def _listen(self) -> None:
        while not self.stopping:
            try:
                async for attempt in self._signals.listen():
                    self._interrupt(attempt)
            except BackendUnavailable as exc:
                log.warning("cancel channel lost (%s); reconnecting", exc)
                await sleep_unless(asyncio.Event(), 0.5)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await super().stop()
