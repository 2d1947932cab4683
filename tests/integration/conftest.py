"""Fixtures for integration tests that run on both coordination backends."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from conveyor.bootstrap import Components, build
from conveyor.config import load_settings

REDIS_URL = os.environ.get("CONVEYOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["local", "redis"])
async def both(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Components]:
    """Standalone components on a fresh SQLite file, over in-process or Redis coordination
    (a private key prefix, deleted afterwards)."""
    prefix = f"cvit{uuid.uuid4().hex[:10]}:"
    redis_url = REDIS_URL if request.param == "redis" else None
    settings = load_settings(
        database_url=str(tmp_path / "c.db"), redis_url=redis_url, redis_prefix=prefix
    )
    built = await build(settings, standalone=True)
    await built.store.migrate()
    try:
        yield built
    finally:
        await built.close()
        if redis_url:
            await drop_prefix(prefix)


async def drop_prefix(prefix: str) -> None:
    """Delete every key a test left under its Redis prefix."""
    raw = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in raw.scan_iter(f"{prefix}*")]
    if keys:
        await raw.delete(*keys)
    await raw.aclose()
