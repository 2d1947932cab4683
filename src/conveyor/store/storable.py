"""What an attempt's outcome must become before the store writes it.

A worker's finish batch holds many tasks' outcomes in one statement; a result orjson cannot
write exactly, a result over the packet-safe limit, or an error text with a NUL (PostgreSQL) or
over MariaDB's TEXT column would fail the statement for all of them, again on every retry. Here
each outcome is made storable on its own: texts cleaned and cut (``values.clean_text``), and a
result that cannot be stored exactly turned into a failure of its task that says why.
"""

from __future__ import annotations

from dataclasses import replace

from conveyor.errors import ValidationError
from conveyor.models import TaskStatus
from conveyor.store.protocol import Outcome
from conveyor.values import clean_text, encode_json

MAX_MESSAGE_CHARS = 2000  # a task_logs message


def storable(o: Outcome, max_result: int) -> Outcome:
    """The outcome as the store can keep it exactly: texts cleaned, and a result that is not
    exact JSON or is over ``max_result`` bytes turned into a failure of the task that says
    why (retrying would most likely give the same result)."""
    message = clean_text(o.message, MAX_MESSAGE_CHARS)
    if o.result is not None:
        try:
            size = len(encode_json(o.result, "result"))
        except ValidationError as exc:
            return _unstorable(o, f"the task's result cannot be stored: {exc}", message)
        if size > max_result:
            return _unstorable(
                o, f"the task's result is {size} bytes; the limit is {max_result} "
                "(setting max_result_bytes)", message,
            )
    error = None if o.error is None else clean_text(o.error)
    if error == o.error and message == o.message:  # the usual case: nothing to copy
        return o
    return replace(o, error=error, message=message)


def _unstorable(o: Outcome, error: str, message: str) -> Outcome:
    return replace(o, status=TaskStatus.FAILED, result=None, retry_at=None, error=clean_text(error),
                   message=message)
