"""Fixtures for integration tests that run on every coordination backend (in-process, Redis,
etcd)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from conveyor.bootstrap import Components, build
from conveyor.config import load_settings
from conveyor.errors import BackendUnavailable
from tests.contract.conftest import drop_etcd_prefix
from tests.support.databases import unavailable

REDIS_URL = os.environ.get("CONVEYOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ETCD_URL = os.environ.get("CONVEYOR_TEST_ETCD_URL", "etcd://127.0.0.1:2379")


@pytest.fixture(params=["local", "redis", "etcd"])
async def both(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Components]:
    """Standalone components on a fresh SQLite file, over in-process, Redis or etcd
    coordination (a private key prefix, deleted afterwards). The etcd one is chosen by
    ``coordination_url``, as a deployment chooses it."""
    prefix = f"cvit{uuid.uuid4().hex[:10]}:"
    redis_url = REDIS_URL if request.param == "redis" else None
    etcd_url = ETCD_URL if request.param == "etcd" else None
    settings = load_settings(
        database_url=str(tmp_path / "c.db"), redis_url=redis_url, redis_prefix=prefix,
        coordination_url=etcd_url,
    )
    try:
        built = await build(settings, standalone=True)
    except BackendUnavailable as exc:
        unavailable(f"etcd at {ETCD_URL}", exc)
        raise
    await built.store.migrate()
    try:
        yield built
    finally:
        if etcd_url:
            await drop_etcd_prefix(built.coordination, prefix)
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
