"""The exception tree of Conveyor.

Every error raised on purpose by Conveyor derives from ``ConveyorError`` so callers can catch
one type; the API maps each branch to an HTTP status in one table (``api/errors.py``).

    ConveyorError
    ├── ConfigError                 a setting is missing or out of bounds (names the setting)
    ├── ValidationError             caller input is wrong                      → 422
    │   └── Refused                 the database refused a value as invalid
    ├── NotFound                    no such task / config                      → 404
    ├── Conflict                    the move is not allowed now                → 409
    │   └── IllegalTransition       a state move outside docs/design.md §2
    ├── StaleEpoch                  a scheduler acted under a superseded epoch
    ├── Unauthorized / Forbidden    authentication / scope                     → 401 / 403
    ├── TooManyRequests             a tenant's quota is used up (Retry-After)  → 429
    ├── BackendUnavailable          store or coordination backend unreachable  → 503
    └── TaskError                   raised *inside* a task by business code
        ├── RetryableError          try again later, if retries remain
        └── PermanentError          fail now, never retry

``TaskError`` is the split executors use: anything a task raises that is not a
``PermanentError`` is retryable, because a transient fault is the common case.
"""

from __future__ import annotations

import math


class ConveyorError(Exception):
    """Base of every error Conveyor raises on purpose."""


class ConfigError(ConveyorError):
    """A setting is missing, malformed or out of bounds."""


class ValidationError(ConveyorError):
    """Input from a caller is wrong; the message says what and where."""


class Refused(ValidationError):
    """The database refused a value (too long, not text it can store) that validation let
    through: the data is at fault, not the connection, so retrying the same write cannot help."""


class NotFound(ConveyorError):
    """The task, config or key asked for does not exist."""


class Conflict(ConveyorError):
    """The request is valid but cannot be applied in the current state."""


class IllegalTransition(Conflict):
    """A state move that docs/design.md §2 does not allow."""


class StaleEpoch(ConveyorError):
    """A scheduler acted with an epoch older than the current leader's; the act was refused."""


class Unauthorized(ConveyorError):
    """No or bad credentials."""


class Forbidden(ConveyorError):
    """Credentials are valid but their scope does not allow this."""


class TooManyRequests(ConveyorError):
    """A tenant's quota (pending tasks, creates per second) refuses the request for now;
    nothing was written. ``retry_after`` is the whole seconds to wait, at least 1."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


class BackendUnavailable(ConveyorError):
    """The store or the coordination backend cannot be reached."""


class ArchiveFailed(ConveyorError):
    """The retention archive could not keep a batch on disk: that batch is not deleted."""


class TaskError(Exception):
    """Raised by business code inside a task to steer the retry decision."""


class RetryableError(TaskError):
    """A transient failure: retry if the task has retries left."""


class PermanentError(TaskError):
    """A failure that retrying cannot fix: the task fails at once."""
