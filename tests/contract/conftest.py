"""Fixtures for the contracts: the store on each database (``store``), and coordination on
each backend (``coord``), Redis and etcd isolated by a key prefix per test.

Redis is real (``CONVEYOR_TEST_REDIS_URL``, default ``redis://127.0.0.1:6379/0``). When it is
unreachable the Redis half is skipped on a laptop but *fails* under ``CI=true``, so a broken
CI service can never turn the suite green by skipping it. etcd likewise
(``CONVEYOR_TEST_ETCD_URL``, default ``etcd://127.0.0.1:2379``; ``scripts/services.sh`` starts it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
import redis.exceptions as redis_errors

from conveyor.coordination.etcd import connect_etcd
from conveyor.coordination.local import LocalCoordination
from conveyor.coordination.protocol import Coordination
from conveyor.coordination.redis import connect_redis
from conveyor.errors import BackendUnavailable
from conveyor.events import EventBus
from conveyor.store.sql import SqlStore
from tests.contract.store_support import Recorder
from tests.support.databases import BACKENDS as DATABASES
from tests.support.databases import fresh_database, unavailable

REDIS_URL = os.environ.get("CONVEYOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ETCD_URL = os.environ.get("CONVEYOR_TEST_ETCD_URL", "etcd://127.0.0.1:2379")
BACKENDS = ["local", "redis", "etcd"]


@dataclass(frozen=True, slots=True)
class RedisSession:
    """A raw client for inspection plus the unique prefix and client name of one test."""

    raw: aioredis.Redis
    url: str
    prefix: str
    client_name: str


async def require_redis(client: aioredis.Redis) -> None:
    try:
        await client.ping()
    except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
        await client.aclose()
        reason = f"Redis at {REDIS_URL} is unreachable ({exc}); set CONVEYOR_TEST_REDIS_URL"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@asynccontextmanager
async def redis_session() -> AsyncIterator[RedisSession]:
    """A fresh prefix whose keys are deleted afterwards, whatever the test left behind."""
    raw = aioredis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=1)
    await require_redis(raw)
    tag = uuid4().hex
    session = RedisSession(raw, REDIS_URL, f"test:{tag}:", f"conveyor-test-{tag}")
    try:
        yield session
    finally:
        stale = [key async for key in raw.scan_iter(match=f"{session.prefix}*", count=1000)]
        if stale:
            await raw.delete(*stale)
        await raw.aclose()


@asynccontextmanager
async def etcd_session() -> AsyncIterator[Coordination]:
    """The etcd backend under a fresh prefix, whose keys are deleted afterwards."""
    prefix = f"test:{uuid4().hex}:"
    try:
        backend = await connect_etcd(ETCD_URL, prefix)
    except BackendUnavailable as exc:
        unavailable(f"etcd at {ETCD_URL}", exc)
        raise
    try:
        yield backend
    finally:
        await drop_etcd_prefix(backend, prefix)
        await backend.close()


async def drop_etcd_prefix(coord: Coordination, prefix: str) -> None:
    """Delete every key a test left under its etcd prefix."""
    client = coord.closer.client  # type: ignore[attr-defined]
    await client.txn([], [("delete_prefix", prefix.encode())])


@pytest.fixture
async def redis_env() -> AsyncIterator[RedisSession]:
    async with redis_session() as session:
        yield session


@pytest.fixture(params=BACKENDS)
async def coord(request: pytest.FixtureRequest) -> AsyncIterator[Coordination]:
    """The same contract over the in-process, the Redis and the etcd backend."""
    if request.param == "local":
        local = LocalCoordination().as_coordination()
        yield local
        await local.close()
        return
    if request.param == "etcd":
        async with etcd_session() as backend:
            yield backend
        return
    async with redis_session() as session:
        backend = await connect_redis(
            session.url, session.prefix, retries=3, client_name=session.client_name
        )
        try:
            yield backend
        finally:
            await backend.close()


@asynccontextmanager
async def migrated_store(backend: str, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """A migrated store on a fresh database of ``backend``, recording the events it emits."""
    async with fresh_database(backend, tmp_path) as url:
        s = SqlStore(url, EventBus([Recorder()]))
        await s.migrate()
        try:
            yield s
        finally:
            await s.close()


@pytest.fixture(params=DATABASES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """A migrated store on a fresh database of each kind, recording the events it emits."""
    async with migrated_store(request.param, tmp_path) as s:
        yield s
