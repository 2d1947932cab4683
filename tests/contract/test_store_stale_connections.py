"""Pooled connections: one that sat idle is pinged before use and replaced if the server
dropped it (a connection used a moment ago is not pinged: a round trip saved on every
transaction of the hot path).

The server really drops the connection (``KILL`` on MariaDB, ``pg_terminate_backend`` on
PostgreSQL), from a second connection of the same pool.
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from conveyor.store import database
from conveyor.store.sql import SqlStore

KILL = {
    "mysql": ("SELECT CONNECTION_ID()", "KILL {}"),
    "postgresql": ("SELECT pg_backend_pid()", "SELECT pg_terminate_backend({})"),
}


@pytest.mark.parametrize("store", ["mariadb", "postgres"], indirect=True)  # SQLite: no server
async def test_an_idle_connection_dropped_by_the_server_is_replaced_before_use(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = store.db.engine
    ask_id, kill = KILL[engine.dialect.name]
    monkeypatch.setattr(database, "PING_AFTER_IDLE", 0.2)
    async with engine.connect() as conn:  # back in the pool, idle from here on
        victim = (await conn.execute(sa.text(ask_id))).scalar_one()
    killer = database.Database(engine.url)  # a pool of its own: the victim stays idle
    try:
        async with killer.engine.connect() as conn:
            await conn.execute(sa.text(kill.format(victim)))
    finally:
        await killer.engine.dispose()
    await asyncio.sleep(0.3)  # idle longer than PING_AFTER_IDLE: the next checkout pings

    async with engine.connect() as again:
        assert (await again.execute(sa.text("SELECT 1"))).scalar_one() == 1
    assert await store.stats.count_by_status() is not None

