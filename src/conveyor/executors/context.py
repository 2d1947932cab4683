"""``current_task()``: which task and attempt the calling function runs.

Set by the python executor around every call, on the event loop, in a worker thread and in a
task process alike, so business code can de-duplicate side effects by ``(id, attempt)``. A task
crosses into a process as JSON (``task_to_json`` / ``task_from_json``), never pickled.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import orjson

from conveyor.models import Priority, Task, TaskStatus

T = TypeVar("T")

_current: contextvars.ContextVar[Task] = contextvars.ContextVar("conveyor_current_task")


def current_task() -> Task:
    """The task being run by the calling function (raises ``LookupError`` outside a task)."""
    return _current.get()


@contextlib.contextmanager
def running_as(task: Task) -> Iterator[None]:
    """``current_task()`` answers ``task`` inside the block."""
    token = _current.set(task)
    try:
        yield
    finally:
        _current.reset(token)


def call_as(task: Task, func: Callable[..., T], payload: dict[str, Any]) -> T:
    """Call ``func(**payload)`` with ``current_task()`` answering ``task``."""
    with running_as(task):
        return func(**payload)


def task_to_json(task: Task) -> dict[str, Any]:
    fields: dict[str, Any] = orjson.loads(orjson.dumps(dataclasses.asdict(task)))
    return fields


def task_from_json(fields: dict[str, Any]) -> Task:
    return Task(**{
        **fields,
        "priority": Priority(fields["priority"]),
        "status": TaskStatus(fields["status"]),
    })
