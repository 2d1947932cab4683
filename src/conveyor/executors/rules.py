"""What a task config may ask of an executor, checked when it is PUT.

A config the worker would refuse is refused at once, with a 422 naming the field, instead of
failing every task of its type later: an executor no worker has, an ``http`` config without a
``url``, a ``grpc`` one without a ``target``, a ``python`` one naming a function that may not
run (``functions``). The built-in checks are the ones the executors apply to each call, run
here on the config alone; a plug-in executor is only checked to exist.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from conveyor.errors import PermanentError, ValidationError
from conveyor.executors.functions import FunctionPolicy, FunctionRef
from conveyor.models import Priority, Task, TaskConfig, TaskStatus
from conveyor.plugins import EXECUTORS, entry_point_names

BUILT_IN = ("python", "http", "grpc")
_LONGEST = 7 * 86_400.0  # the longest task timeout, for a config that sets none


@functools.cache
def known_executors() -> frozenset[str]:
    """Built-ins plus the installed plug-ins (read once per process, as workers do)."""
    return frozenset(BUILT_IN) | entry_point_names(EXECUTORS)


def check_task_config(config: TaskConfig, functions: FunctionPolicy) -> None:
    """Raise ``ValidationError`` if a worker would refuse ``config``."""
    known = known_executors()
    if config.executor not in known:
        raise ValidationError(
            f"executor {config.executor!r} is unknown; known: {', '.join(sorted(known))}"
        )
    check = _CHECKS.get(config.executor)
    if check is None:
        return
    try:
        check(_probe(config), config.executor_config, functions)
    except PermanentError as exc:
        raise ValidationError(str(exc)) from None


def _probe(config: TaskConfig) -> Task:
    """A task of the config's type, as an executor's own parser expects one."""
    return Task(
        id="", task_type=config.task_type, priority=Priority.NORMAL, payload={},
        status=TaskStatus.PENDING, max_retries=0, timeout=config.timeout or _LONGEST,
        created_at=0.0, run_at=0.0,
    )


def _python(task: Task, config: Mapping[str, Any], functions: FunctionPolicy) -> None:
    if "function" in config:
        functions.check(FunctionRef.parse(config["function"]))


# The HTTP and gRPC parsers are imported when a config of theirs is checked: every process
# builds the service that checks configs, and they load httpx.
def _http(task: Task, config: Mapping[str, Any], functions: FunctionPolicy) -> None:
    from conveyor.executors import http

    http.parse_config(task, config)
    http.check_no_credentials(config["url"])  # only here: a stored config keeps running


def _grpc(task: Task, config: Mapping[str, Any], functions: FunctionPolicy) -> None:
    from conveyor.executors import grpc

    grpc.parse_config(task, config)


_CHECKS: dict[str, Callable[[Task, Mapping[str, Any], FunctionPolicy], None]] = {
    "python": _python, "http": _http, "grpc": _grpc,
}
