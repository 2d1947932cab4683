"""Conveyor: a distributed asynchronous task service.

The names below are imported on first use (PEP 562): ``conveyor`` is the parent of every
module, so whatever it imported itself every process and every ``conveyor`` command would pay
for at start, the ``--help`` that needs none of it included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.lazy import exports

if TYPE_CHECKING:
    from conveyor.errors import PermanentError, RetryableError, TaskError
    from conveyor.executors.python import current_task
    from conveyor.registrations import Conveyor

__version__ = "0.1.0"

__all__ = [
    "Conveyor",
    "PermanentError",
    "RetryableError",
    "TaskError",
    "__version__",
    "current_task",
]

_HOMES = {
    "Conveyor": "conveyor.registrations",
    "PermanentError": "conveyor.errors",
    "RetryableError": "conveyor.errors",
    "TaskError": "conveyor.errors",
    "current_task": "conveyor.executors.python",
}


__getattr__ = exports(__name__, _HOMES, globals())
