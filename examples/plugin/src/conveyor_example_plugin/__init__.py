"""An example Conveyor plug-in: the ``reverse`` executor.

Installed next to Conveyor, it registers itself through the ``conveyor.executors`` entry point
(see ``pyproject.toml``); a task type whose ``task_config.executor`` is ``reverse`` then runs
here. It follows the same contract as the built-in executors (``conveyor.executors.protocol``):
built with the worker's ``Settings``, return a JSON-able result, raise ``PermanentError`` for a
failure that retrying cannot fix, and let ``CancelledError`` through.

``secret_fields`` names the config fields that hold credentials: Conveyor stores them
encrypted, shows them as ``"***"`` and hands them to ``execute`` opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.config import Settings
from conveyor.errors import PermanentError
from conveyor.models import Task

__all__ = ["ReverseExecutor"]


class ReverseExecutor:
    """Reverses ``payload["text"]``; ``executor_config`` may set ``"upper": true``, and a
    ``"token"`` that ``payload["token"]`` must match (a shared secret, stored encrypted)."""

    secret_fields = ("token",)

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def execute(self, task: Task, config: Mapping[str, Any]) -> Any:
        text = task.payload.get("text")
        if not isinstance(text, str):
            # Bad input stays bad on every retry.
            raise PermanentError("payload.text must be a string")
        if "token" in config and task.payload.get("token") != config["token"]:
            raise PermanentError("payload.token does not match the configured token")
        result = text[::-1]
        if config.get("upper"):
            result = result.upper()
        return {"reversed": result, "attempt": task.attempt}

    async def close(self) -> None:
        """Nothing pooled to release."""
