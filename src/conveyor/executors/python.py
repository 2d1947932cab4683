"""Run local Python functions: async ones on the event loop, plain ones in a task process
(``isolation="process"``, the default) or the worker's thread pool (``isolation="thread"``).

The payload becomes keyword arguments. A function can learn which task and attempt it runs
through ``current_task()``, which is how business code de-duplicates side effects.

What may run (``functions``): the function registered for the task's type, or the one a task
config names in ``executor_config.function`` if it is registered too or lives in a module of
``worker.python_modules``. Stopping (docs/design.md §8.13): a cancelled call of a process-run
function kills its process; a thread cannot be killed, so a thread-run call that is cancelled
waits for its thread to return before it ends, and keeps the attempt's slot until then.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conveyor.errors import PermanentError
from conveyor.executors.context import call_as, current_task, running_as
from conveyor.executors.functions import FunctionPolicy, FunctionRef, load_function
from conveyor.executors.subprocess_pool import ProcessPool
from conveyor.models import Task
from conveyor.registrations import Isolation, Registration

__all__ = ["PythonExecutor", "current_task"]

QUIET = 0.5  # seconds without a call after which the worker is idle enough to warm a process


class PythonExecutor:
    def __init__(
        self,
        registrations: Mapping[str, Registration],
        threads: int = 32,
        *,
        processes: int = 8,
        modules: Iterable[str] = (),
    ) -> None:
        self._registrations = registrations
        self._policy = FunctionPolicy(registrations, modules)
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="conveyor-task")
        preload = sorted({
            r.func.__module__ for r in registrations.values()
            if r.isolation == "process" and not inspect.iscoroutinefunction(r.func)
        })
        self._processes = ProcessPool(processes, preload)
        self._named: dict[FunctionRef, tuple[Callable[..., Any], Isolation]] = {}
        self._calls = 0  # how many calls so far: ``_warm_when_quiet`` waits for them to pause
        self._warming: asyncio.Task[None] | None = None

    async def execute(self, task: Task, config: Mapping[str, Any]) -> Any:
        self._calls += 1
        func, isolation = self._resolve(task.task_type, config)
        _check_signature(func, task.payload)
        if inspect.iscoroutinefunction(func):
            with running_as(task):
                return await func(**task.payload)
        if isolation == "process":
            return await self._processes.run(FunctionRef.of(func), task)
        return await self._in_thread(task, func)

    async def _in_thread(self, task: Task, func: Callable[..., Any]) -> Any:
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._threads, lambda: context.run(call_as, task, func, task.payload)
        )
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # The thread cannot be stopped: end only when it returns (its result is dropped).
            await asyncio.wait({future})
            raise

    def _resolve(
        self, task_type: str, config: Mapping[str, Any]
    ) -> tuple[Callable[..., Any], Isolation]:
        path = config.get("function")
        if path is not None:
            ref = FunctionRef.parse(path)
            self._policy.check(ref)  # before importing anything
            if ref not in self._named:
                self._named[ref] = self._named_function(ref)
            return self._named[ref]
        registration = self._registrations.get(task_type)
        if registration is None:
            raise PermanentError(f"no function is registered for task type {task_type!r}")
        return registration.func, registration.isolation

    def _named_function(self, ref: FunctionRef) -> tuple[Callable[..., Any], Isolation]:
        """A named function that is also registered keeps its registration's isolation."""
        func = load_function(ref)
        for registration in self._registrations.values():
            if registration.func is func:
                return func, registration.isolation
        return func, "process"

    async def start(self) -> None:
        """Warm a task process once the worker is quiet (``_warm_when_quiet``)."""
        self._warming = asyncio.create_task(self._warm_when_quiet(), name="conveyor-warm")

    async def _warm_when_quiet(self) -> None:
        """Start a task process once no call came for ``QUIET`` seconds, so a plain task that
        arrives later finds one. Not at once: a new interpreter importing the task modules
        would compete for the same cores with the worker's own start and its first tasks,
        which are waiting already. A plain task that comes first starts one itself."""
        seen = -1
        while self._calls != seen:
            seen = self._calls
            await asyncio.sleep(QUIET)
        self._processes.warm()

    async def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
            await asyncio.gather(self._warming, return_exceptions=True)
        self._threads.shutdown(wait=False, cancel_futures=True)
        await self._processes.close()


@functools.lru_cache(maxsize=1024)
def _mismatch(func: Callable[..., Any], keys: tuple[str, ...]) -> str | None:
    """Why a payload of these keys does not fit ``func``, if it does not: it depends on the
    names alone, and binding a signature at every call cost more than a no-op task's body.
    Building the signature can fail (some builtins have none): nothing is checked then."""
    try:
        inspect.signature(func).bind(**dict.fromkeys(keys))
    except TypeError as exc:
        return str(exc)
    except ValueError:
        return None
    return None


def _check_signature(func: Callable[..., Any], payload: Mapping[str, Any]) -> None:
    """A payload that does not fit the function will never fit: fail without retrying."""
    wrong = _mismatch(func, tuple(payload))
    if wrong is not None:
        raise PermanentError(f"payload does not match the function's parameters: {wrong}")
