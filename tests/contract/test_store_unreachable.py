"""A database that cannot be reached surfaces as ``BackendUnavailable`` from every part of the
store, never as a driver's exception, on SQLite, MariaDB and PostgreSQL alike.

The databases are really unreachable: a port nothing listens on, a SQLite file in a directory
that does not exist.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from conveyor.apikeys import ApiKey, Scope
from conveyor.errors import BackendUnavailable
from conveyor.models import TaskConfig, TaskStatus, WorkerInfo
from conveyor.store.protocol import ListRequest, Outcome, TaskFilter
from conveyor.store.sql import SqlStore
from tests.contract.store_support import make_task
from tests.support.databases import BACKENDS, MYSQL_URL, POSTGRES_URL

Call = Callable[[SqlStore], Awaitable[object]]

CALLS: dict[str, Call] = {
    "migrate": lambda s: s.migrate(),
    "ping": lambda s: s.ping(),
    "tasks.insert": lambda s: s.tasks.insert([make_task()]),
    "tasks.get": lambda s: s.tasks.get("t1"),
    "tasks.list_tasks": lambda s: s.tasks.list_tasks(ListRequest(TaskFilter(), None, 10)),
    "moves.start": lambda s: s.moves.start(["t1"], "w1", 1.0),
    "moves.finish": lambda s: s.moves.finish([Outcome("t1", 1, TaskStatus.SUCCESS)], 1.0),
    "moves.cancel_pending": lambda s: s.moves.cancel_pending("t1", 1.0, "x"),
    "sweeps.overdue": lambda s: s.sweeps.overdue(1.0, 1.0, 10),
    "stats.count_by_status": lambda s: s.stats.count_by_status(),
    "configs.put_config": lambda s: s.configs.put_config(TaskConfig("t")),
    "keys.put_key": lambda s: s.keys.put_key(ApiKey("k", Scope.READ, "n", 1.0)),
    "workers.record_workers": lambda s: s.workers.record_workers(
        [WorkerInfo("w1", "h", 1, 1)], "alive", 1.0
    ),
    "workers.mark_worker": lambda s: s.workers.mark_worker("w1", "dead", 1.0),
    "epochs.max_epoch": lambda s: s.epochs.max_epoch(),
    "epochs.record_epoch": lambda s: s.epochs.record_epoch(1, "s1", 1.0),
}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def unreachable_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return str(tmp_path / "no-such-directory" / "conveyor.db")
    server = sa.make_url(MYSQL_URL if backend == "mariadb" else POSTGRES_URL)
    url = server.set(host="127.0.0.1", port=closed_port(), database="conveyor")
    return url.render_as_string(hide_password=False)


async def sqlite_threads_done() -> None:
    """aiosqlite hands the shutdown of a connection that failed to open to its worker thread,
    which then answers on the event loop: wait for it while the test's loop still runs."""
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):
            await asyncio.to_thread(thread.join, 5.0)


@pytest.fixture(params=BACKENDS)
async def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    store = SqlStore(unreachable_url(request.param, tmp_path))
    try:
        yield store
    finally:
        await store.close()
        await sqlite_threads_done()


@pytest.mark.parametrize("call", list(CALLS))
async def test_an_unreachable_database_is_backend_unavailable(
    unreachable: SqlStore, call: str
) -> None:
    with pytest.raises(BackendUnavailable):
        await CALLS[call](unreachable)
