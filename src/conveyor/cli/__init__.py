"""The ``conveyor`` command: run the service (standalone, api, scheduler, worker, migrate),
talk to a running one (submit, get, list, cancel, retry, logs) and operate it (workers, queues,
scheduler status, stats, pause, resume, audit, apikey, tenants, config, types, secrets,
schedules, workflows); batch submits a file.

Each group of commands is a module; importing them registers their commands on ``cli``, and
the import order is the order of the help panels (Run, Tasks, Operations).

Every command module imports only what all commands need; what a command alone uses (the HTTP
client, the SQL store, the process roles) it imports when it runs, so ``conveyor --help`` and
``conveyor submit`` answer at once and a worker imports no more than a worker needs.
"""

from __future__ import annotations

import copy
import importlib.machinery
import sys

import typer
from typer.main import get_command_name

from conveyor.cli import run  # isort: skip
from conveyor.cli import tasks  # isort: skip
from conveyor.cli import (
    apikeys,
    audit,
    batch,
    operations,
    schedules,
    secrets_cmd,
    settings,
    tenants,
    types,
    workflows,
)
from conveyor.cli.common import cli

settings.register(cli)
types.register(cli)
secrets_cmd.register(cli)
schedules.register(cli)
workflows.register(cli)

__all__ = [
    "apikeys", "app_for", "audit", "batch", "cli", "main", "operations", "run", "schedules",
    "secrets_cmd", "settings", "tasks", "tenants", "types", "workflows",
]


def main() -> None:
    _main_holds_no_tasks()
    try:
        app_for(sys.argv[1:])()
    except KeyboardInterrupt:
        sys.exit(130)


def app_for(args: list[str]) -> typer.Typer:
    """The command tree to run ``args`` with: only the command or group their first word
    names, else the whole tree. Typer turns every command of the tree it runs into a Click
    command first, reading each one's signature and type hints: ~0.15 s of CPU, a tenth of a
    worker's start, where a process started as ``conveyor worker`` needs one command. What
    the user sees is the same: the root's settings and callback (``--version``) are kept, and
    a first word that names nothing (an option, ``--help``, a typo) gets the whole tree, its
    help and its suggestions."""
    if not args:
        return cli
    commands = [c for c in cli.registered_commands
                if (c.name or get_command_name(getattr(c.callback, "__name__", ""))) == args[0]]
    groups = [g for g in cli.registered_groups if g.name == args[0]]
    if not commands and not groups:
        return cli
    lean = copy.copy(cli)
    lean.registered_commands, lean.registered_groups = commands, groups
    return lean


def _main_holds_no_tasks() -> None:
    """The ``conveyor`` script holds no task code, so a task process (``spawn``) must not
    re-import it: that would import the whole CLI, most of a task process's start-up, which
    the worker's first plain task waits for. multiprocessing re-imports no ``__main__`` whose
    spec is named ``__main__`` (as it skips a package's ``__main__.py``); a script run as
    ``python app.py`` keeps its spec (None), so its task functions are still found."""
    script = sys.modules["__main__"]
    if getattr(script, "__spec__", None) is None:
        script.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
