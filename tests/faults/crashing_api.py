"""An API process whose creates die right after their SQL commit, before the queue push.

Run as ``python crashing_api.py --port N --probability P`` with the same ``CONVEYOR_*``
environment as ``conveyor api``. It wraps the store's task records so that each insert, once
committed, ends the process (exit code 70) with probability P: the rows it
leaves PENDING without a queue entry are what the orphan sweep must find. The switch lives
here, in the fault suite, and not in the product's settings or hot path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
from collections.abc import Sequence
from typing import Any

from conveyor.bootstrap import build
from conveyor.config import load_settings
from conveyor.models import Task
from conveyor.process import Process
from conveyor.store.protocol import Created, TaskRecords

CRASH_EXIT = 70


class CrashAfterInsert:
    """``TaskRecords`` that may exit the process once an insert has committed."""

    def __init__(self, inner: TaskRecords, probability: float) -> None:
        self._inner = inner
        self._probability = probability

    async def insert(self, tasks: Sequence[Task]) -> list[Created]:
        created = await self._inner.insert(tasks)
        if random.random() < self._probability:
            os._exit(CRASH_EXIT)
        return created

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def main(port: int, probability: float) -> int:
    settings = load_settings(port=port)
    parts = await build(settings)
    parts.store.tasks = CrashAfterInsert(parts.store.tasks, probability)  # type: ignore[misc]
    try:
        return await Process(
            settings, api=True, scheduler=False, worker=False, parts=parts
        ).run()
    finally:
        await parts.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--probability", type=float, required=True)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.port, args.probability)))
