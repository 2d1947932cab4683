"""What a start imports: the CLI alone (``--help``, ``submit``), and a worker process.

Each check runs in a fresh interpreter and reads ``sys.modules``, not timings: a module that
is not imported costs nothing, whatever the machine's load. What each command needs beyond
the CLI it imports when it runs, and a process imports what its roles need.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` are in ``sys.modules`` after running ``code``."""
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_package_imports_its_names_on_first_use() -> None:
    assert imported("import conveyor", ("conveyor.registrations", "conveyor.executors")) == []
    assert imported("from conveyor import Conveyor", ("conveyor.registrations",)) == [
        "conveyor.registrations"]


def test_the_cli_imports_neither_client_nor_store_nor_backends() -> None:
    heavy = ("asyncio", "httpx", "sqlalchemy", "redis", "yaml", "cryptography", "grpc",
             "fastapi", "uvicorn", "opentelemetry.sdk", "conveyor.client", "conveyor.store")
    assert imported("import conveyor.cli", heavy) == []


@pytest.mark.parametrize("role", ["worker", "scheduler"])
def test_a_process_without_api_imports_no_server_and_no_tracing_sdk(role: str) -> None:
    """A worker or scheduler serves HTTP only on a metrics port, traces only when asked and
    calls gRPC only for a task of the grpc executor; nor does a worker import the scheduler."""
    code = ("import conveyor.cli, conveyor.process, conveyor.bootstrap\n"
            f"from conveyor.{role} import *")
    unused = ("fastapi", "starlette", "uvicorn", "conveyor.serving", "opentelemetry.sdk",
              "grpc")  # the grpc executor imports it on its first call
    assert imported(code, unused) == []
    if role == "worker":
        assert imported(code, ("conveyor.scheduler",)) == []


def test_a_worker_loads_no_http_client_and_no_cipher_before_its_first_task() -> None:
    """httpx (the client, the HTTP and gRPC executors, webhooks) and cryptography (sealed
    secrets) are loaded by the first task that needs them, not by every worker's start."""
    code = (
        "import conveyor.cli, conveyor.process, conveyor.worker\n"
        "from conveyor import bootstrap\n"
        "from conveyor.config import Settings\n"
        "from conveyor.keyring import Keyring\n"
        "s = Settings(database_url='mysql://root@127.0.0.1/x', redis_url='redis://127.0.0.1')\n"
        "regs = bootstrap.registrations(s)\n"
        "bootstrap.executors(s, regs, Keyring.from_settings(s)); bootstrap.listeners(s)\n"
        "from conveyor.executors.secret_fields import secret_fields\n"
        "secret_fields('python')"
    )
    assert imported(code, ("httpx", "cryptography.fernet", "conveyor.client.aio")) == []


def test_the_script_imports_the_cli_without_collecting_and_leaves_collection_on() -> None:
    """The ``conveyor`` script's entry (``conveyor.launch``): the command tree is imported with
    the collector off (a plain import sets off ~80 collections, a full one among them), then
    frozen, and the collector is on again for the command itself."""
    code = (
        "import atexit, gc\n"
        "runs = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'start' and "
        "runs.append(info['generation']))\n"
        "atexit.register(lambda: print(gc.isenabled(), gc.get_freeze_count() > 10_000, "
        "2 not in runs))\n"
        "sys.argv = ['conveyor', '--version']\n"
        "from conveyor import launch\n"
        "launch.main()\n"
    )
    done = subprocess.run([sys.executable, "-c", f"import sys\n{code}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.split()[-3:] == ["True", "True", "True"], done.stderr


def test_a_command_runs_on_a_tree_of_that_command_alone() -> None:
    """``conveyor worker`` builds one Click command, not the whole tree's; a first word that
    names no command or group (an option, a typo) gets the whole tree."""
    from conveyor.cli import app_for, cli

    worker = app_for(["worker", "--capacity", "5"])
    assert [c.callback.__name__ for c in worker.registered_commands if c.callback] == ["worker"]
    assert worker.registered_groups == []
    assert worker.registered_callback is cli.registered_callback  # --version still works
    scheduler = app_for(["scheduler", "status"])
    assert [g.name for g in scheduler.registered_groups] == ["scheduler"]
    assert scheduler.registered_commands == []
    assert [c.name for c in app_for(["list"]).registered_commands] == ["list"]
    for args in ([], ["--help"], ["wroker"], ["-V"]):
        assert app_for(args) is cli
