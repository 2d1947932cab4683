"""Which executor runs a task type: built-ins, plug-ins from entry points, or given in code."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from conveyor.errors import PermanentError
from conveyor.executors.protocol import Executor

log = logging.getLogger(__name__)


class ExecutorRegistry:
    def __init__(self, executors: Mapping[str, Executor]) -> None:
        self._executors = dict(executors)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._executors)

    def get(self, name: str) -> Executor:
        try:
            return self._executors[name]
        except KeyError:
            raise PermanentError(
                f"no executor named {name!r}; known: {', '.join(sorted(self._executors))}"
            ) from None

    async def start(self) -> None:
        """Let executors that prepare ahead (``async def start()``, optional) do so."""
        for executor in self._executors.values():
            start = getattr(executor, "start", None)
            if start is not None:
                await start()

    async def close(self) -> None:
        for name, executor in self._executors.items():
            try:
                await executor.close()
            except Exception:
                log.exception("closing executor %s failed", name)
