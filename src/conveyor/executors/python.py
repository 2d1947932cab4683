"""Run registered local functions: async ones on the event loop, plain ones in a thread pool.

The payload becomes keyword arguments. A function can learn which task and attempt it runs
through ``current_task()``, which is how business code de-duplicates side effects.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conveyor.errors import PermanentError
from conveyor.models import Task
from conveyor.registrations import Registration

_current: contextvars.ContextVar[Task] = contextvars.ContextVar("conveyor_current_task")


def current_task() -> Task:
    """The task being run by the calling function (raises ``LookupError`` outside a task)."""
    return _current.get()


class PythonExecutor:
    def __init__(self, registrations: Mapping[str, Registration], threads: int = 32) -> None:
        self._registrations = registrations
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="conveyor-task")
        self._imported: dict[str, Callable[..., Any]] = {}

    async def execute(self, task: Task, config: Mapping[str, Any]) -> Any:
        func = self._resolve(task.task_type, config)
        _check_signature(func, task.payload)
        token = _current.set(task)
        try:
            if inspect.iscoroutinefunction(func):
                return await func(**task.payload)
            context = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._pool, lambda: context.run(func, **task.payload)
            )
        finally:
            _current.reset(token)

    def _resolve(self, task_type: str, config: Mapping[str, Any]) -> Callable[..., Any]:
        path = config.get("function")
        if isinstance(path, str) and path:
            if path not in self._imported:
                self._imported[path] = _import_function(path)
            return self._imported[path]
        registration = self._registrations.get(task_type)
        if registration is None:
            raise PermanentError(f"no function is registered for task type {task_type!r}")
        return registration.func

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _import_function(path: str) -> Callable[..., Any]:
    module_name, _, name = path.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise PermanentError(f"cannot import function {path!r}: {exc}") from exc
    if not callable(func):
        raise PermanentError(f"{path!r} is not callable")
    return func  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=1024)
def _signature(func: Callable[..., Any]) -> inspect.Signature:
    """Signatures are costly to build and never change: one per function."""
    return inspect.signature(func)


def _check_signature(func: Callable[..., Any], payload: Mapping[str, Any]) -> None:
    """A payload that does not fit the function will never fit: fail without retrying."""
    try:
        _signature(func).bind(**payload)
    except TypeError as exc:
        raise PermanentError(f"payload does not match the function's parameters: {exc}") from exc
    except ValueError:
        return
