"""A Python call of a registered task turned into a task request: the arguments checked against
the function's signature, the per-call options (``priority``, ``delay``, ...) in API fields.

    resize.options(priority="high", delay=30, idempotency_key=key, timeout=10).submit(path=p)

Why the check happens here: a worker runs the function with the payload as keyword arguments,
so a call that does not fit the signature would only fail there, permanently and long after the
caller moved on. Binding at submit time raises the same ``TypeError`` a direct call would.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypedDict, Unpack, cast

if TYPE_CHECKING:
    from conveyor.client.aio import AsyncClient, AsyncTaskHandle
    from conveyor.client.sync import Client, TaskHandle

P = ParamSpec("P")


class TaskOptions(TypedDict, total=False):
    """What one submission may set beyond the payload; left out: the type's defaults apply."""

    priority: str | int  # high / normal / low, or 2 / 1 / 0
    delay: float  # seconds from now
    run_at: datetime  # not before this time (naive means UTC)
    idempotency_key: str
    timeout: float  # seconds one attempt may run
    max_retries: int
    metadata: Mapping[str, str]
    callback_url: str


_OPTION_NAMES = frozenset(TaskOptions.__annotations__)
_API_NAMES = {"delay": "delay_seconds", "timeout": "timeout_seconds"}


class Clients(Protocol):
    """Where submissions go: ``Conveyor`` hands out its shared clients."""

    def client(self) -> Client: ...

    def async_client(self) -> AsyncClient: ...


def checked_options(options: Mapping[str, Any]) -> TaskOptions:
    """``options`` if every name is a known option; else the ``TypeError`` a call would raise."""
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        raise TypeError(
            f"options() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(_OPTION_NAMES))}"
        )
    return cast(TaskOptions, dict(options))


def api_fields(options: TaskOptions) -> dict[str, Any]:
    """The options as fields of ``POST /api/v1/tasks``."""
    fields: dict[str, Any] = {}
    for name, value in options.items():
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Mapping):
            value = dict(value)
        fields[_API_NAMES.get(name, name)] = value
    return fields


def payload_of(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The payload for calling ``func(*args, **kwargs)`` on a worker: every argument by name.

    Raises ``TypeError`` when the call does not fit the signature (as calling ``func`` would),
    or uses what a keyword payload cannot carry (positional-only parameters, extra ``*args``).
    """
    try:
        signature = inspect.signature(func)
    except ValueError:  # no signature to check (some builtins): keywords only
        if args:
            raise TypeError(f"{_name(func)}() takes its arguments by keyword only") from None
        return dict(kwargs)
    bound = signature.bind(*args, **kwargs)
    payload: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            payload.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL or kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(
                f"{_name(func)}(): {name!r} cannot be submitted: a task's payload carries "
                "arguments by name, so positional-only and *args parameters cannot be sent"
            )
        else:
            payload[name] = value
    return payload


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", repr(func))


class TaskCall(Generic[P]):
    """A registered task with options set for one or more submissions; ``options`` again
    returns a new one with more set (the later value wins)."""

    def __init__(
        self, clients: Clients, task_type: str, func: Callable[P, Any], options: TaskOptions
    ) -> None:
        self._clients = clients
        self.task_type = task_type
        self._func = func
        self.options_set = options

    def options(self, **options: Unpack[TaskOptions]) -> TaskCall[P]:
        merged = TaskOptions(**self.options_set)
        merged.update(checked_options(options))
        return TaskCall(self._clients, self.task_type, self._func, merged)

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
        payload = payload_of(self._func, args, kwargs)
        client = self._clients.client()
        return client.submit(self.task_type, payload, **api_fields(self.options_set))

    async def asubmit(self, *args: P.args, **kwargs: P.kwargs) -> AsyncTaskHandle:
        payload = payload_of(self._func, args, kwargs)
        client = self._clients.async_client()
        return await client.submit(self.task_type, payload, **api_fields(self.options_set))
