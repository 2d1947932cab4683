"""Apply the Alembic migrations shipped in ``conveyor/store/migrations``.

Every process start migrates, and nearly always the database is current already: ``upgrade``
then reads ``alembic_version`` and returns without importing Alembic (~0.15 s of every start,
standalone's included). ``HEAD`` must name the newest migration; a unit test holds it to
Alembic's own head, so a new migration that forgets it fails the suite, not a deployment.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0015"  # the newest revision in migrations/versions


def _config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision``; safe to run on every start."""
    if revision == "head" and await current(engine) == HEAD:
        return
    from alembic import command

    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_config(sync), revision))


async def current(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None when it has none yet (no Conveyor tables)."""
    async with engine.connect() as conn:
        if not await conn.run_sync(lambda sync: sa.inspect(sync).has_table("alembic_version")):
            return None
        return (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
