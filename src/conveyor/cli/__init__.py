"""The ``conveyor`` command: run the service (standalone, api, scheduler, worker, migrate),
talk to a running one (submit, get, list, cancel, retry, logs) and operate it (workers, queues,
scheduler status, stats, pause, resume, apikey).

Each group of commands is a module; importing them registers their commands on ``cli``.
"""

from __future__ import annotations

import sys

from conveyor.cli import apikeys, operations, run, tasks
from conveyor.cli.common import cli

__all__ = ["apikeys", "cli", "main", "operations", "run", "tasks"]


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
