"""Opening the Redis backend: URLs, Sentinel, client options, and ``connect_redis``, which
assembles the five parts over one ``Backend``.

URLs accepted by ``connect_redis``::

    redis://[[user]:password@]host[:port][/db]        plain TCP
    rediss://[[user]:password@]host[:port][/db]       TLS (redis-py's ``ssl_*`` query options)
    unix://[[user]:password@]/path/to/redis.sock[?db=0]
    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]
        [?sentinel_password=...]                      Sentinel; the port defaults to 26379,
                                                      the credentials are the master's
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff

from conveyor.coordination.keys import DEFAULT_LEADER_KEY, DEFAULT_PREFIX, Keys
from conveyor.coordination.protocol import Coordination
from conveyor.coordination.redis.backend import LOST, SOCKET_TIMEOUT, Backend, load_scripts
from conveyor.coordination.redis.cancels import RedisCancelSignals
from conveyor.coordination.redis.lease import RedisLeaderLease
from conveyor.coordination.redis.queues import RedisTaskQueues
from conveyor.coordination.redis.registry import RedisRegistry
from conveyor.coordination.redis.worker_queues import RedisWorkerQueues
from conveyor.errors import BackendUnavailable, ConfigError

SENTINEL_PORT = 26379


def client_options(retries: int, client_name: str | None = None) -> dict[str, Any]:
    """Options shared by plain, TLS, unix and Sentinel clients."""
    return {
        "client_name": client_name,
        "decode_responses": True,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        "retry_on_error": [redis_errors.ConnectionError, redis_errors.TimeoutError],
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
        "socket_keepalive": True,
        "health_check_interval": 15,
    }


@dataclass(frozen=True, slots=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL."""

    hosts: list[tuple[str, int]]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def parse_sentinel_url(url: str) -> SentinelUrl:
    """``redis+sentinel://[[user]:password@]h1[:port][,h2[:port]...]/service[/db]``."""
    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    path = [p for p in parts.path.split("/") if p]
    if not hostlist or not path or len(path) > 2:
        raise ConfigError(
            f"a sentinel URL looks like redis+sentinel://host:port/service[/db], not {redact(url)}"
        )
    hosts = [split_host(h) for h in hostlist.split(",")]
    username, _, password = userinfo.partition(":")
    query = parse_qs(parts.query)
    return SentinelUrl(
        hosts=hosts,
        service=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=query.get("sentinel_password", [None])[0],
    )


def split_host(text: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; the port defaults to Sentinel's."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else SENTINEL_PORT
    host, sep, port = text.partition(":")
    return host, int(port) if sep else SENTINEL_PORT


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{hosts}").geturl()


def open_client(
    url: str, retries: int, client_name: str | None
) -> tuple[aioredis.Redis, Sentinel | None]:
    options = client_options(retries, client_name)
    if not url.startswith("redis+sentinel://"):
        return aioredis.Redis.from_url(url, **options), None
    parsed = parse_sentinel_url(url)
    # Sentinels get only the connection-level options; the master gets them all.
    sentinel_options = {
        key: options[key]
        for key in ("retry", "retry_on_error", "socket_timeout", "socket_connect_timeout")
    }
    sentinel_options["password"] = parsed.sentinel_password
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        parsed.hosts, sentinel_kwargs=sentinel_options, **options
    )
    client = sentinel.master_for(
        parsed.service, db=parsed.db, username=parsed.username, password=parsed.password
    )
    return cast(aioredis.Redis, client), sentinel


class RedisCoordination:
    """The five Redis parts over one backend, closed together."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.queues = RedisTaskQueues(backend)
        self.worker_queues = RedisWorkerQueues(backend)
        self.registry = RedisRegistry(backend)
        self.lease = RedisLeaderLease(backend)
        self.cancels = RedisCancelSignals(backend)

    def as_coordination(self) -> Coordination:
        return Coordination(
            self.queues, self.worker_queues, self.registry, self.lease, self.cancels, self
        )

    async def close(self) -> None:
        await self.backend.close()


async def connect_redis(
    url: str,
    prefix: str = DEFAULT_PREFIX,
    *,
    retries: int = 10,
    clock: Callable[[], float] = time.time,
    client_name: str | None = None,
    leader_key: str = DEFAULT_LEADER_KEY,
) -> Coordination:
    """Open a client for ``url`` (forms in the module docstring), check it answers, and build
    the backend. ``retries`` bounds redis-py's retry of one command (about 8 s at the default);
    ``client_name`` shows in ``CLIENT LIST`` so operators can tell components apart;
    ``leader_key`` names the lease (``scheduler.leader_lock_key``)."""
    client, sentinel = open_client(url, retries, client_name)
    backend = Backend(
        client, Keys(prefix, leader_key), load_scripts(client), clock, sentinel=sentinel
    )
    try:
        await client.ping()
    except LOST as exc:
        await backend.close()
        raise BackendUnavailable(f"redis at {redact(url)} is unreachable: {exc}") from exc
    return RedisCoordination(backend).as_coordination()
