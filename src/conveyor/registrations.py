"""``Conveyor()``: register local Python functions as task types and submit them.

    app = Conveyor()

    @app.task("resize_image", timeout=30, max_retries=3, priority="high")
    async def resize(path: str) -> dict: ...

    @app.task("report")                       # a plain function: runs in a task process
    def report(month: str) -> str: ...

    handle = resize.submit(path="a.png")      # or: await resize.asubmit(path="a.png")
    handle.result(timeout=10)                 # or: await handle
    resize.options(priority="low", delay=30, idempotency_key="a").submit("b.png")

    @app.periodic("*/5 * * * *", name="nightly-report", timezone="Asia/Shanghai")
    async def report() -> dict: ...           # a task type plus a schedule that fires it

Registration builds nothing global: ``conveyor standalone --app module:app`` imports the module
and hands ``app.registrations`` to the worker; submitting talks HTTP to a running server.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, Unpack, cast, get_args

from conveyor.client.calls import TaskCall, TaskOptions
from conveyor.client.wire import target
from conveyor.errors import ConfigError
from conveyor.models import Backoff, Priority, check_task_type
from conveyor.schedules.declared import declare
from conveyor.schedules.model import Schedule

if TYPE_CHECKING:
    from conveyor.client import AsyncClient, AsyncTaskHandle, Client, TaskHandle

P = ParamSpec("P")
R = TypeVar("R")

#: Where a plain (``def``) function runs. ``process``: a task process the worker kills on timeout
#: or cancel, so nothing of a stopped attempt runs on. ``thread``: the worker's thread pool, no
#: process start or JSON crossing, but a thread cannot be stopped, so an overrunning call keeps
#: its slot until it returns. Async functions run on the worker's event loop.
Isolation = Literal["process", "thread"]
_IMPORTABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True, slots=True)
class Registration:
    """A task type backed by a local function, with the defaults it was registered with."""

    name: str
    func: Callable[..., Any]
    timeout: float | None = None
    max_retries: int | None = None
    priority: Priority | None = None
    backoff: Backoff | None = None
    isolation: Isolation = "process"


class TaskFunction(Generic[P, R]):
    """The decorated function: still callable directly, plus ``submit`` / ``asubmit``, which
    check the arguments against its signature, and ``options`` for per-call settings."""

    def __init__(self, app: Conveyor, registration: Registration) -> None:
        self._app = app
        self.registration = registration
        self.__doc__ = registration.func.__doc__
        self.__name__ = getattr(registration.func, "__name__", registration.name)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = self.registration.func(*args, **kwargs)
        return result

    def options(self, **options: Unpack[TaskOptions]) -> TaskCall[P]:
        """``resize.options(priority="high", delay=30).submit(path=p)``: see ``TaskOptions``."""
        func = cast(Callable[P, R], self.registration.func)
        return TaskCall(self._app, self.registration.name, func, {}).options(**options)

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
        return self.options().submit(*args, **kwargs)

    async def asubmit(self, *args: P.args, **kwargs: P.kwargs) -> AsyncTaskHandle:
        return await self.options().asubmit(*args, **kwargs)


class Conveyor:
    """A set of task registrations plus where to submit them: ``url`` and ``api_key``, else
    ``CONVEYOR_URL`` and ``CONVEYOR_API_KEY`` as the CLI reads them, else the local standalone
    server without a key."""

    def __init__(self, url: str | None = None, api_key: str | None = None) -> None:
        self.url, self.api_key = target(url, api_key)
        self.registrations: dict[str, Registration] = {}
        self.periodics: dict[str, Schedule] = {}  # schedules declared in code, by name
        self._client: Client | None = None
        # One async client per event loop: an httpx pool cannot cross loops.
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncClient
        ] = weakref.WeakKeyDictionary()

    def task(
        self,
        name: str | None = None,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        priority: str | int | None = None,
        backoff: Backoff | None = None,
        isolation: Isolation | None = None,
    ) -> Callable[[Callable[P, R]], TaskFunction[P, R]]:
        """Register the decorated function as task type ``name`` (default: its ``__name__``).

        ``isolation`` is for plain functions (see ``Isolation``); the default is ``process``.
        """

        def register(func: Callable[P, R]) -> TaskFunction[P, R]:
            task_type = check_task_type(name or func.__name__)
            if task_type in self.registrations:
                raise ConfigError(f"task type {task_type!r} is registered twice")
            registration = Registration(
                task_type, func, timeout, max_retries,
                None if priority is None else Priority.parse(priority), backoff,
                _isolation(task_type, func, isolation),
            )
            self.registrations[task_type] = registration
            return TaskFunction(self, registration)

        return register

    def periodic(
        self,
        cron: str | None = None,
        *,
        every_seconds: int | None = None,
        name: str | None = None,
        task_type: str | None = None,
        payload: dict[str, Any] | None = None,
        timezone: str = "UTC",
        overlap: str = "skip",
        catchup_window: float = 60.0,
        jitter: float = 0.0,
        timeout: float | None = None,
        max_retries: int | None = None,
        priority: str | int | None = None,
    ) -> Callable[[Callable[P, R]], TaskFunction[P, R]]:
        """Register the function as task type ``task_type`` (default: its ``__name__``) and a
        schedule ``name`` (default: the task type) firing it by ``cron`` or ``every_seconds``.
        Schedules are synced into the store when a scheduler starts (``schedules.declared``);
        a bad expression, zone or policy raises ``ConfigError`` here, at import."""

        def register(func: Callable[P, R]) -> TaskFunction[P, R]:
            kind = check_task_type(task_type or func.__name__)
            declared = declare(
                name or kind, kind, cron=cron, every_seconds=every_seconds,
                payload=payload or {}, timezone=timezone, overlap=overlap,
                catchup_window=catchup_window, jitter=jitter,
            )
            if declared.name in self.periodics:
                raise ConfigError(f"schedule {declared.name!r} is declared twice")
            found = self.task(kind, timeout=timeout, max_retries=max_retries,
                              priority=priority)(func)
            self.periodics[declared.name] = declared
            return found

        return register

    def include(self, other: Conveyor) -> None:
        """Add another app's registrations and schedules (the built-in tasks, a plug-in's)."""
        for name, registration in other.registrations.items():
            self.registrations.setdefault(name, registration)
        for name, declared in other.periodics.items():
            self.periodics.setdefault(name, declared)

    def client(self) -> Client:
        """The blocking client ``submit`` uses, made once and reused."""
        if self._client is None:
            from conveyor.client import Client

            self._client = Client(self.url, api_key=self.api_key)
        return self._client

    def async_client(self) -> AsyncClient:
        """The async client ``asubmit`` uses on the running event loop, reused there."""
        loop = asyncio.get_running_loop()
        found = self._async_clients.get(loop)
        if found is None:
            from conveyor.client import AsyncClient

            found = self._async_clients[loop] = AsyncClient(self.url, api_key=self.api_key)
        return found

    def close(self) -> None:
        """Close the blocking client (the async ones: ``await app.aclose()`` on their loop)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        found = self._async_clients.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found.aclose()


def _isolation(task_type: str, func: Callable[..., Any], isolation: str | None) -> Isolation:
    """Check the choice now, at import, rather than on the first task that runs."""
    if isolation is not None and isolation not in get_args(Isolation):
        raise ConfigError(
            f"task type {task_type!r}: isolation must be 'process' or 'thread', not {isolation!r}"
        )
    if inspect.iscoroutinefunction(func):
        if isolation is not None:
            raise ConfigError(
                f"task type {task_type!r}: isolation is for plain functions; an async function "
                "runs on the worker's event loop"
            )
        return "process"
    chosen: Isolation = "thread" if isolation == "thread" else "process"
    where = f"{getattr(func, '__module__', '')}:{getattr(func, '__qualname__', '')}"
    if chosen == "process" and not _IMPORTABLE.match(where.replace(":", ".", 1)):
        raise ConfigError(
            f"task type {task_type!r}: {where} runs in a task process, which finds it by module "
            "and name; define it at module level, or register it with isolation='thread'"
        )
    return chosen


def load_app(spec: str) -> Conveyor:
    """Import ``module:attribute`` and return the ``Conveyor`` it names."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"setting 'app': expected module:attribute, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"setting 'app': cannot import {module_name!r}: {exc}") from exc
    app = getattr(module, attribute, None)
    if not isinstance(app, Conveyor):
        raise ConfigError(f"setting 'app': {spec!r} is not a conveyor.Conveyor instance")
    return app

