"""A pooled connection goes back without a ROLLBACK after its transaction committed (one round
trip saved on every transaction of the hot path), yet a connection returned with a transaction
still open is rolled back, so the next user never sees another's uncommitted writes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from conveyor.store import database
from conveyor.store.sql import SqlStore


async def probe_table(store: SqlStore) -> None:
    async with store.db.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE reset_probe (n INTEGER)"))


async def test_a_committed_connection_is_not_in_a_transaction(store: SqlStore) -> None:
    await probe_table(store)
    async with store.db.begin() as conn:
        await conn.execute(sa.text("INSERT INTO reset_probe (n) VALUES (1)"))
        dbapi = (await conn.get_raw_connection()).dbapi_connection
        assert database._in_transaction(dbapi)
    assert not database._in_transaction(dbapi)


async def test_a_connection_returned_in_a_transaction_is_rolled_back(store: SqlStore) -> None:
    engine = store.db.engine
    await probe_table(store)

    def leave_open(sync_conn: sa.Connection) -> Any:
        pooled = sync_conn.engine.raw_connection()  # no Connection to roll it back on close
        cursor = pooled.cursor()
        cursor.execute("INSERT INTO reset_probe (n) VALUES (1)")
        cursor.close()
        assert database._in_transaction(pooled.dbapi_connection)
        dbapi = pooled.dbapi_connection
        pooled.close()
        return dbapi

    async with engine.connect() as conn:
        dbapi = await conn.run_sync(leave_open)
    assert not database._in_transaction(dbapi)
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT COUNT(*) FROM reset_probe"))).scalar() == 0


async def test_a_commit_on_mariadb_sends_no_rollback(store: SqlStore) -> None:
    if store.db.engine.dialect.name != "mysql":
        return
    count = sa.text("SHOW SESSION STATUS LIKE 'Com_rollback'")
    async with store.db.begin() as conn:
        before = int((await conn.execute(count)).one()[1])
    for _ in range(3):
        async with store.db.begin() as conn:
            after = int((await conn.execute(count)).one()[1])
    assert after == before
