"""A transaction left idle is ended by the server, so a host cut off mid-transaction cannot
hold row locks for long (``store.database.IDLE_TRANSACTION_TIMEOUT``; tests/hosts shows why)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from conveyor.store.database import IDLE_TRANSACTION_TIMEOUT, Database
from conveyor.store.urls import database_url
from tests.support.databases import fresh_database

LIMITS = {
    "mariadb": ("SELECT @@session.idle_transaction_timeout", str(IDLE_TRANSACTION_TIMEOUT)),
    "postgres": ("SHOW idle_in_transaction_session_timeout", f"{IDLE_TRANSACTION_TIMEOUT}s"),
}


@pytest.mark.parametrize("backend", sorted(LIMITS))
async def test_every_connection_limits_idle_transactions(backend: str, tmp_path: Path) -> None:
    query, expected = LIMITS[backend]
    async with fresh_database(backend, tmp_path) as url:
        db = Database(database_url(url))
        try:
            async with db.begin() as conn:
                value = (await conn.execute(sa.text(query))).scalar()
        finally:
            await db.engine.dispose()
    assert str(value) == expected
