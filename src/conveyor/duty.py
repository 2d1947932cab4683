"""Background duties and their supervisor.

Every duty (elector, dispatcher, promoter, recoverer, sweeper; processor, heartbeat,
canceller) has the same shape: ``run_once(now)`` does one pass and can be called by a test
without sleeping; ``start()`` runs it in a loop; ``stop()`` ends the loop. A pass that fails
because a backend is unreachable is logged and retried with backoff; any other exception is a
bug, so the duty dies and its supervisor stops the process rather than run half-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from conveyor.errors import BackendUnavailable
from conveyor.retry import RetryDelays

log = logging.getLogger(__name__)
T = TypeVar("T")



class Duty:
    """One background duty. Subclasses set ``name`` and implement ``run_once``."""

    name = "duty"

    def __init__(self, interval: float, clock: Callable[[], float] = time.time) -> None:
        self.interval = interval
        self.clock = clock
        self.last_run: float | None = None
        self.failed_passes = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def run_once(self, now: float) -> None:
        raise NotImplementedError

    async def wait_for_next_pass(self) -> None:
        """Wait before the next pass; the dispatcher overrides this to wake on new work."""
        await sleep_unless(self._stopping, self.interval * (1 + 0.1 * random.random()))

    def start(self) -> asyncio.Task[None]:
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name=self.name)
        return self._task

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def _loop(self) -> None:
        delays = RetryDelays(base=0.2, cap=10.0, spread=(0.5, 1.5))
        while not self._stopping.is_set():
            try:
                await self.run_once(self.clock())
                self.last_run = self.clock()
                delays.reset()
            except BackendUnavailable as exc:
                self.failed_passes += 1
                delay = delays.next()
                log.warning("%s: backend unavailable (%s); retry in %.1fs", self.name, exc, delay)
                await sleep_unless(self._stopping, delay)
                continue
            await self.wait_for_next_pass()


async def sleep_unless(event: asyncio.Event, delay: float) -> None:
    """Sleep ``delay`` seconds, or less if ``event`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), delay)


async def retrying(
    call: Callable[[], Awaitable[T]], what: str, deadline: float = 60.0
) -> T:
    """Run ``call`` until it gets past transient backend errors, for up to ``deadline``
    seconds: a process starting while its database or Redis blips should wait, not exit."""
    give_up = time.monotonic() + deadline
    delays = RetryDelays(base=0.1, cap=5.0)
    while True:
        try:
            return await call()
        except BackendUnavailable as exc:
            delay = delays.next()
            if time.monotonic() + delay > give_up:
                raise
            log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)


class Supervisor:
    """Starts duties in the given order, stops them in reverse, and notices a death."""

    def __init__(self, duties: Sequence[Duty]) -> None:
        self.duties = list(duties)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [duty.start() for duty in self.duties]

    async def wait(self) -> BaseException | None:
        """Return when a duty ends on its own; its exception (if any) says why. A duty that
        was stopped on purpose (a drained worker's processor) has not died: the others are
        still watched."""
        watched = dict(zip(self._tasks, self.duties, strict=True))
        while watched:
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                duty = watched.pop(task)
                if not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    log.error("duty %s died: %r", task.get_name(), exc, exc_info=exc)
                    return exc
                if not duty.stopping:
                    return None
        return None

    async def stop(self) -> None:
        for duty in reversed(self.duties):
            await duty.stop()
