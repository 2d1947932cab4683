"""Throw-away databases on the real servers, one per test, for the store suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

MYSQL_URL = os.environ.get("CONVEYOR_TEST_MYSQL_URL", "mysql+asyncmy://root@127.0.0.1:3306")
POSTGRES_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "mariadb", "postgres"]


def unavailable(what: str, exc: BaseException) -> None:
    """A missing service fails the test under CI and skips it on a developer's laptop."""
    message = f"{what} is not reachable: {exc}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """Yield the URL of a new, empty database on ``backend``; drop it afterwards."""
    if backend == "sqlite":
        yield str(tmp_path / "conveyor.db")
        return
    name = f"conveyor_t_{uuid.uuid4().hex[:12]}"
    server = MYSQL_URL if backend == "mariadb" else POSTGRES_URL
    options = {} if backend == "mariadb" else {"isolation_level": "AUTOCOMMIT"}
    engine = create_async_engine(server, **options)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except (OSError, sa.exc.DBAPIError) as exc:
        await engine.dispose()
        unavailable(backend, exc)
    url = sa.make_url(server).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        async with engine.begin() as conn:
            if backend == "postgres":
                await conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                await conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        await engine.dispose()
