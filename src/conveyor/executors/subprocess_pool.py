"""Plain (``def``) task functions in processes that can be stopped.

A thread cannot be stopped: a function that overran its timeout, or was cancelled, ran on in
the worker's thread pool after its TIMEOUT or CANCELLED was written (docs/design.md §8.13). A
process can. This pool keeps up to ``size`` task processes, each serving one call at a time
(``child.py``); when the call is cancelled the process group is killed, the call returns only
once the process is gone, and a fresh process takes its place on the next call.

Processes are started with ``spawn`` (a fresh interpreter: forking a process that runs an event
loop, threads and open connections copies all of them in an undefined state) on first need,
importing ``preload`` (the user's task modules) at once, and are kept for later calls. The
child finds the function by module and name, so it must be importable at module level;
``sys.path`` is handed over by ``spawn``, so whatever the worker could import, the child can.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Awaitable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

import orjson

from conveyor.errors import PermanentError, RetryableError
from conveyor.executors import child
from conveyor.executors.context import task_to_json
from conveyor.executors.functions import FunctionRef
from conveyor.models import Task

log = logging.getLogger(__name__)
T = TypeVar("T")


class Described(Exception):
    """An error whose text is already the whole description (``ValueError: boom``), as the
    function raised it in its process."""


class FunctionFailed(Described, RetryableError):
    """The function raised; retried while retries remain, like any other exception."""


class FunctionFailedPermanently(Described, PermanentError):
    """The function raised ``PermanentError`` (or returned what JSON cannot hold)."""


class _Child:
    """One task process and the parent's end of its pipe."""

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn

    @classmethod
    async def start(cls, preload: Sequence[str]) -> _Child:
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe(duplex=True)
        process = context.Process(
            target=child.main, args=(child_end, tuple(preload)), name="conveyor-task",
            daemon=True,
        )
        started = cls(process, parent_end)
        try:
            await _to_the_end(asyncio.to_thread(process.start))
            child_end.close()  # else the parent never sees end-of-file when the child dies
            await started.receive()  # "ready": the child imported what it preloads
        except BaseException:
            child_end.close()
            if process.pid is not None:
                await _to_the_end(started.kill())
            raise
        return started

    async def call(self, request: bytes) -> dict[str, Any]:
        try:
            self.conn.send_bytes(request)
        except OSError as exc:
            raise self._died() from exc
        answer: dict[str, Any] = orjson.loads(await self.receive())
        return answer

    async def receive(self) -> bytes:
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        fd = self.conn.fileno()
        loop.add_reader(fd, _resolve, readable)
        try:
            await readable
        finally:
            loop.remove_reader(fd)
        try:
            return self.conn.recv_bytes()
        except (EOFError, OSError) as exc:
            raise self._died() from exc

    def _died(self) -> RetryableError:
        self.process.join(1.0)
        return RetryableError(
            f"the process running the function exited (exit code {self.process.exitcode})"
        )

    async def kill(self) -> None:
        """Kill the process and its group, and return once it is gone."""
        pid = self.process.pid
        if pid is not None and self.process.exitcode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # the child leads its own group
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()  # not yet its own group leader: at least the child
        # waitpid, not the sentinel pipe: a grandchild that inherited the pipe would keep it
        # open after the child itself is gone.
        await asyncio.to_thread(self.process.join)
        self.conn.close()
        self.process.close()


class ProcessPool:
    """Up to ``size`` task processes; ``run`` takes an idle one, or the spare being started, or
    starts one. A spare is started in the background whenever none is idle (and at ``warm``),
    so a call seldom waits for a process start and its timeout is spent on the function."""

    def __init__(self, size: int, preload: Sequence[str] = ()) -> None:
        self._size = size
        self._slots = asyncio.Semaphore(size)
        self._preload = tuple(preload)
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._spare: asyncio.Task[_Child] | None = None
        self._closed = False
        self.replaced = 0  # processes killed mid-call and replaced (timeouts, cancels, deaths)

    def warm(self) -> None:
        """Start a process now, before the first call needs it."""
        self._keep_spare()

    async def run(self, ref: FunctionRef, task: Task) -> Any:
        request = orjson.dumps({"module": ref.module, "name": ref.name, "task": task_to_json(task)})
        async with self._slots:
            if not self._idle and self._spare is not None:
                await asyncio.wait({self._spare})  # it lands in ``_idle`` (unless taken)
            proc = self._idle.pop() if self._idle else await _Child.start(self._preload)
            self._busy.add(proc)
            self._keep_spare()
            try:
                answer = await proc.call(request)
            except BaseException:
                # Cancelled (timeout, cancel, shutdown) or the child died: it is not reused.
                # Killing runs to its end, so a second cancel cannot leave the process running.
                self._busy.discard(proc)
                self.replaced += 1
                await _to_the_end(proc.kill())
                self._keep_spare()
                raise
            self._busy.discard(proc)
            self._idle.append(proc)
        if "error" in answer:
            failure = FunctionFailedPermanently if answer["permanent"] else FunctionFailed
            raise failure(answer["error"])
        return answer["result"]

    def _keep_spare(self) -> None:
        if self._closed or self._idle or self._spare is not None:
            return
        if len(self._busy) >= self._size:
            return
        self._spare = asyncio.create_task(_Child.start(self._preload), name="conveyor-spare")
        self._spare.add_done_callback(self._spare_started)

    def _spare_started(self, started: asyncio.Task[_Child]) -> None:
        if self._spare is started:
            self._spare = None
        if started.cancelled():
            return
        if (exc := started.exception()) is not None:
            log.warning("starting a task process failed: %s", exc)
            return
        self._idle.append(started.result())

    async def close(self) -> None:
        self._closed = True
        if self._spare is not None:
            await asyncio.wait({self._spare})
        everyone = [*self._idle, *self._busy]
        self._idle.clear()
        self._busy.clear()
        await asyncio.gather(*(c.kill() for c in everyone), return_exceptions=True)


async def _to_the_end(step: Awaitable[T]) -> T:
    """Await ``step`` to its end even if the caller is cancelled meanwhile (the cancel is
    raised afterwards): starting or killing a process must not be left half done."""
    running = asyncio.ensure_future(step)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(running)
        except asyncio.CancelledError:
            if running.cancelled():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
