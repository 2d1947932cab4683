"""Finished attempts waiting to be written: the processor adds, the finisher flushes.

Outcomes are written in batches (one transaction for many tasks), and a batch that fails to
write stays here to be tried again, so a database outage delays results but never drops them.
"""

from __future__ import annotations

import asyncio
import contextlib

from conveyor.models import QueueItem
from conveyor.store.protocol import Outcome


class Completions:
    def __init__(self) -> None:
        self._pending: list[tuple[Outcome | None, QueueItem]] = []
        self._ready = asyncio.Event()

    def add(self, outcome: Outcome | None, item: QueueItem) -> None:
        """``outcome`` None means "nothing to write, just release the item"."""
        self._pending.append((outcome, item))
        self._ready.set()

    def take(self, limit: int) -> list[tuple[Outcome | None, QueueItem]]:
        batch, self._pending = self._pending[:limit], self._pending[limit:]
        if not self._pending:
            self._ready.clear()
        return batch

    def put_back(self, batch: list[tuple[Outcome | None, QueueItem]]) -> None:
        self._pending[:0] = batch
        self._ready.set()

    def __len__(self) -> int:
        return len(self._pending)

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
