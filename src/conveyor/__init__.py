"""Conveyor: a distributed asynchronous task service."""

from __future__ import annotations

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
