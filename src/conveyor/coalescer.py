"""Group concurrent writes into one: many callers, one transaction.

Fifty clients each creating one task would otherwise pay fifty commits (each an fsync on
MariaDB or PostgreSQL). Here the first caller's items are written at once; callers that arrive
while that write is in flight wait for the next one, which takes all of them together. An idle
system adds no delay; a busy one gets batches as large as its concurrency.

A write that fails for one caller's items must not fail the others: a failed group is split
(``batches.isolate``) until only the callers whose items the store refuses get the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from conveyor.batches import isolate

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(
        self, write: Callable[[list[T]], Awaitable[Sequence[R]]], max_batch: int = 1000
    ) -> None:
        self._write = write
        self._max = max_batch
        self._waiting: list[tuple[list[T], asyncio.Future[list[R]]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, items: Sequence[T]) -> list[R]:
        """Write ``items`` (in one transaction with other callers'); results in input order."""
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._waiting.append((list(items), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        # Not shielded: a caller cancelled meanwhile cancels its own future only, which the
        # writer then skips; the others' write goes on in the writer's task regardless.
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            group = self._take()
            try:
                written = await isolate(group, self._write_group)
            except BaseException as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for part, results in written:
                start = 0
                for chunk, future in part:
                    if not future.done():
                        if isinstance(results, Exception):
                            future.set_exception(results)
                        else:
                            future.set_result(results[start : start + len(chunk)])
                    start += len(chunk)

    async def _write_group(self, group: Sequence[tuple[list[T], object]]) -> list[R]:
        return list(await self._write([item for chunk, _ in group for item in chunk]))

    def _take(self) -> list[tuple[list[T], asyncio.Future[list[R]]]]:
        """Callers in arrival order up to ``max_batch`` items (at least one caller)."""
        taken, size = 0, 0
        for chunk, _ in self._waiting:
            if taken and size + len(chunk) > self._max:
                break
            taken += 1
            size += len(chunk)
        group, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return group
