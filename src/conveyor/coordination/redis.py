"""The Redis coordination backend (DESIGN.md §3): the five contracts of ``protocol`` over one
client, with every multi-key move in a Lua script (``lua/``) so it is atomic.

The in-process backend (``local``) is the reference semantics; this module matches it, with the
differences written next to the code that has them (see ``RedisTaskQueues.enqueue`` and
``RedisTaskQueues.tracked``).

URLs accepted by ``connect_redis``::

    redis://[[user]:password@]host[:port][/db]        plain TCP
    rediss://[[user]:password@]host[:port][/db]       TLS (redis-py's ``ssl_*`` query options)
    unix://[[user]:password@]/path/to/redis.sock[?db=0]
    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]
        [?sentinel_password=...]                      Sentinel; the port defaults to 26379,
                                                      the credentials are the master's

Connection loss never crashes a caller on the first blip: redis-py retries every command with
exponential backoff (``Retry``), and the long-lived calls (``fetch``, ``wait_for_work``,
``listen``) reconnect on their own for as long as they run. A command that still fails after its
retries raises ``BackendUnavailable``.

Clocks: heartbeat expiry is the caller's wall clock, as is ``expired_workers(now)``, so workers
and schedulers need roughly synchronised clocks (NTP), as with any TTL-based registry.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ParamSpec, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.typing import EncodableT, FieldT

from conveyor.coordination.keys import DEFAULT_PREFIX, Keys
from conveyor.coordination.protocol import Coordination, Reaped
from conveyor.errors import BackendUnavailable, ConfigError, StaleEpoch
from conveyor.models import Lease, Priority, QueueItem, WorkerInfo
from conveyor.retry import RetryDelays

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: Errors that mean "Redis is not reachable right now" (BusyLoadingError is a ConnectionError).
LOST: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    TimeoutError,
)
#: A blocking command waits at most this long per round trip, below the socket timeout, so a
#: dead connection is noticed and a long ``fetch`` timeout never trips the read timeout.
BLOCK_SLICE = 2.0
#: Redis reads a blocking timeout of 0 as "forever"; never send less than this.
MIN_BLOCK = 0.01
SOCKET_TIMEOUT = 5.0
SENTINEL_PORT = 26379
SCRIPTS = (
    "assign",
    "promote_due",
    "fetch",
    "hand_back",
    "reap",
    "tracked",
    "lease_acquire",
    "lease_renew",
    "lease_release",
    "take_tokens",
)


def unavailable_on_loss(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Turn a connection loss that outlived redis-py's retries into ``BackendUnavailable``, the
    one error the callers (duties, API) know how to treat as "try again later"."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except LOST as exc:
            raise BackendUnavailable(f"redis is unreachable: {exc}") from exc

    return wrapper


def reconnect_delays() -> RetryDelays:
    """Waits between reconnects: 50 ms doubling, never more than 1 s (jitter only shortens)."""
    return RetryDelays(base=0.05, cap=1.0, spread=(0.5, 1.0))


@dataclass(slots=True)
class Backend:
    """What the five parts share: one client, the key names, the scripts, the clock."""

    client: aioredis.Redis
    keys: Keys
    scripts: dict[str, AsyncScript]
    clock: Callable[[], float] = time.time
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    sentinel: Sentinel | None = None

    async def run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA a script; redis-py reloads it if the server lost its script cache."""
        return await self.scripts[script](keys=list(keys), args=list(args))

    async def block(self, call: Callable[[float], Awaitable[T | None]], timeout: float) -> T | None:
        """Run a blocking command until it returns something or ``timeout`` passes.

        The wait is cut into slices shorter than the socket timeout; a lost connection is
        waited out with backoff instead of raised, because the caller only asked "anything
        within ``timeout``?" and "no" is a correct answer while Redis is away.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delays = reconnect_delays()
        while not self.closing.is_set() and (remaining := deadline - loop.time()) > 0:
            wait = max(MIN_BLOCK, min(remaining, BLOCK_SLICE))
            try:
                async with asyncio.timeout(wait + SOCKET_TIMEOUT):
                    result = await call(wait)
            except LOST as exc:
                log.warning("redis blocking call failed, retrying: %s", exc)
                await asyncio.sleep(min(delays.next(), max(0.0, deadline - loop.time())))
                continue
            if result is not None:
                return result
        return None

    async def close(self) -> None:
        self.closing.set()
        await self.client.aclose(close_connection_pool=True)
        if self.sentinel is not None:
            for sentinel_client in self.sentinel.sentinels:
                await sentinel_client.aclose()


def decode_all(raw: Sequence[str | bytes]) -> list[QueueItem]:
    return [QueueItem.decode(member) for member in raw]


def wake(pipe: Any, keys: Keys) -> None:
    """Queue the wake token on a pipeline: one token at most, however much was enqueued."""
    pipe.lpush(keys.wake, "1")
    pipe.ltrim(keys.wake, 0, 0)


def stale_epoch(exc: redis_errors.ResponseError, epoch: int) -> StaleEpoch | None:
    """The ``StaleEpoch`` a script signalled with an error reply, or None for any other error."""
    text = str(exc)
    if not text.startswith("STALE_EPOCH"):
        return None
    return StaleEpoch(f"epoch {epoch} is stale; current epoch is {text.split()[-1]}")


def ms(seconds: float) -> int:
    """A TTL in whole milliseconds, at least 1 (PX 0 is an error)."""
    return max(1, round(seconds * 1000))


# -- TaskQueues -------------------------------------------------------------------------------


class RedisTaskQueues:
    """Priority queues (lists), the delayed set, dispatch into worker queues, the wake token."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend
        self._keys = backend.keys

    @unavailable_on_loss
    async def enqueue(self, items: Sequence[QueueItem]) -> None:
        """RPUSH per priority plus the wake token, in one round trip.

        Unlike the in-process dict, a list does not refuse an item that is already queued;
        checking would cost a scan of the queue per item on the hot path. A duplicate is
        harmless: ``assign`` moves one copy at a time, the store's compare-and-set refuses a
        second start of the same attempt.
        """
        if not items:
            return
        by_queue: dict[str, list[str]] = {}
        for item in items:
            by_queue.setdefault(self._keys.queue(item.priority), []).append(item.encode())
        async with self._b.client.pipeline(transaction=False) as pipe:
            for key, members in by_queue.items():
                pipe.rpush(key, *members)
            wake(pipe, self._keys)
            await pipe.execute()

    @unavailable_on_loss
    async def schedule(self, items: Sequence[tuple[QueueItem, float]]) -> None:
        if items:
            await self._b.client.zadd(self._keys.delayed, {i.encode(): due for i, due in items})

    @unavailable_on_loss
    async def promote_due(self, now: float, limit: int) -> int:
        if limit <= 0:
            return 0
        keys = [self._keys.delayed, *self._keys.queues, self._keys.wake]
        return int(await self._b.run("promote_due", keys, [repr(now), limit]))

    @unavailable_on_loss
    async def peek(self, priority: Priority, count: int) -> list[QueueItem]:
        if count <= 0:
            return []
        raw = await self._b.client.lrange(self._keys.queue(priority), 0, count - 1)
        return decode_all(raw)

    @unavailable_on_loss
    async def assign(self, epoch: int, moves: Sequence[tuple[QueueItem, str]]) -> int:
        keys = [self._keys.epoch, *self._keys.queues]
        keys += [self._keys.worker_queue(worker_id) for _, worker_id in moves]
        args = [str(epoch), *(item.encode() for item, _ in moves)]
        try:
            return int(await self._b.run("assign", keys, args))
        except redis_errors.ResponseError as exc:
            raise stale_epoch(exc, epoch) or exc from exc

    @unavailable_on_loss
    async def remove(self, items: Sequence[QueueItem]) -> None:
        if not items:
            return
        async with self._b.client.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.lrem(self._keys.queue(item.priority), 1, item.encode())
            pipe.zrem(self._keys.delayed, *(item.encode() for item in items))
            await pipe.execute()

    @unavailable_on_loss
    async def lengths(self) -> dict[str, int]:
        async with self._b.client.pipeline(transaction=False) as pipe:
            for priority in Priority:
                pipe.llen(self._keys.queue(priority))
            pipe.zcard(self._keys.delayed)
            sizes = await pipe.execute()
        names = [p.label for p in Priority] + ["delayed"]
        return dict(zip(names, map(int, sizes), strict=True))

    @unavailable_on_loss
    async def tracked(self, task_ids: Sequence[str]) -> set[str]:
        """One atomic script over every place an id can sit.

        Worker queues are read for every worker in the registry index. The in-process backend
        also counts a queue left behind for a worker that is no longer registered; here such an
        item is *not* tracked, so the orphan sweep puts it back in a queue instead of leaving it
        stranded.
        """
        if not task_ids:
            return set()
        keys = [*self._keys.queues, self._keys.delayed, self._keys.workers]
        args = [self._keys.worker_prefix, Keys.QUEUE_SUFFIX, Keys.ACTIVE_SUFFIX, *task_ids]
        return set(await self._b.run("tracked", keys, args))

    async def wait_for_work(self, timeout: float) -> None:
        """BLPOP the wake token; every enqueue path pushes one (trimmed to a single token)."""
        wake = self._keys.wake
        await self._b.block(lambda wait: self._b.client.blpop([wake], wait), timeout)

    @unavailable_on_loss
    async def set_paused(self, name: str, paused: bool) -> None:
        if paused:
            await self._b.client.sadd(self._keys.paused, name)
            return
        async with self._b.client.pipeline(transaction=False) as pipe:
            pipe.srem(self._keys.paused, name)
            wake(pipe, self._keys)
            await pipe.execute()

    @unavailable_on_loss
    async def paused(self) -> set[str]:
        return {str(name) for name in await self._b.client.smembers(self._keys.paused)}

    @unavailable_on_loss
    async def inflight(self) -> dict[str, int]:
        """LRANGE of every registered worker's queue and active list, in one pipeline; only
        asked for when some type has a concurrency limit, and bounded by the fleet's slots."""
        ids = [str(w) for w in await self._b.client.zrange(self._keys.workers, 0, -1)]
        async with self._b.client.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.lrange(self._keys.worker_queue(worker_id), 0, -1)
                pipe.lrange(self._keys.worker_active(worker_id), 0, -1)
            replies = await pipe.execute()
        counts: dict[str, int] = {}
        for item in (i for reply in replies for i in decode_all(reply)):
            counts[item.task_type] = counts.get(item.task_type, 0) + 1
        return counts

    @unavailable_on_loss
    async def take_tokens(self, task_type: str, rate: float, wanted: int, now: float) -> int:
        key = self._keys.bucket(task_type)
        return int(await self._b.run("take_tokens", [key], [repr(rate), wanted, repr(now)]))


# -- WorkerQueues -----------------------------------------------------------------------------


class RedisWorkerQueues:
    """A worker's queue and active list; fetching is a script, waiting is a no-op BLMOVE."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend
        self._keys = backend.keys

    async def fetch(self, worker_id: str, count: int, timeout: float) -> list[QueueItem]:
        """Take up to ``count`` items, waiting up to ``timeout`` for the first.

        The wait is ``BLMOVE queue queue LEFT LEFT``: it returns as soon as the queue has an
        item but leaves the item where it is, so a connection lost mid-reply loses nothing.
        The move itself is the ``fetch`` script, one round trip for the whole batch.
        """
        if count <= 0:
            return []
        queue = self._keys.worker_queue(worker_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            taken = await self._take(worker_id, count)
            remaining = deadline - loop.time()
            if taken or remaining <= 0 or self._b.closing.is_set():
                return taken
            await self._b.block(lambda wait: self._peek_blocking(queue, wait), remaining)

    async def _peek_blocking(self, queue: str, wait: float) -> str | None:
        """Wait for the queue's head without moving it (a BLMOVE onto the same end)."""
        # redis-py types the timeout as int; Redis >= 6 takes fractions of a second.
        command = self._b.client.execute_command
        head: str | None = await command(  # type: ignore[no-untyped-call]
            "BLMOVE", queue, queue, "LEFT", "LEFT", wait
        )
        return head

    async def _take(self, worker_id: str, count: int) -> list[QueueItem]:
        keys = [self._keys.worker_queue(worker_id), self._keys.worker_active(worker_id)]
        try:
            return decode_all(await self._b.run("fetch", keys, [count]))
        except LOST as exc:
            log.warning("redis fetch failed for worker %s: %s", worker_id, exc)
            return []

    @unavailable_on_loss
    async def active(self, worker_id: str) -> list[QueueItem]:
        return decode_all(await self._b.client.lrange(self._keys.worker_active(worker_id), 0, -1))

    @unavailable_on_loss
    async def ack(self, worker_id: str, items: Sequence[QueueItem]) -> None:
        if not items:
            return
        active = self._keys.worker_active(worker_id)
        async with self._b.client.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.lrem(active, 1, item.encode())
            wake(pipe, self._keys)  # capacity was freed: the dispatcher may place more work
            await pipe.execute()

    @unavailable_on_loss
    async def hand_back(self, worker_id: str) -> list[QueueItem]:
        keys = [self._keys.worker_queue(worker_id), *self._keys.queues, self._keys.wake]
        return decode_all(await self._b.run("hand_back", keys, []))


# -- Registry ---------------------------------------------------------------------------------


def info_to_hash(info: WorkerInfo) -> dict[FieldT, EncodableT]:
    return {
        "worker_id": info.worker_id,
        "host": info.host,
        "pid": info.pid,
        "capacity": info.capacity,
        "types": json.dumps(list(info.types)),
        "weight": repr(info.weight),
        "started_at": repr(info.started_at),
        "last_heartbeat": repr(info.last_heartbeat),
        "draining": int(info.draining),
        "prefetch": info.prefetch,
    }


def info_from_hash(fields: dict[str, str], load: int) -> WorkerInfo:
    return WorkerInfo(
        worker_id=fields["worker_id"],
        host=fields["host"],
        pid=int(fields["pid"]),
        capacity=int(fields["capacity"]),
        types=tuple(json.loads(fields["types"])),
        weight=float(fields["weight"]),
        started_at=float(fields["started_at"]),
        last_heartbeat=float(fields["last_heartbeat"]),
        load=load,
        draining=fields["draining"] == "1",
        prefetch=int(fields.get("prefetch", 0)),
    )


class RedisRegistry:
    """Workers: a hash each, indexed in a sorted set scored by heartbeat expiry.

    The index decides liveness (``score > now``); the hash lives twice as long so the listing
    never loses a worker that is still indexed as live to a TTL that fired a moment early.
    """

    def __init__(self, backend: Backend) -> None:
        self._b = backend
        self._keys = backend.keys

    @unavailable_on_loss
    async def heartbeat(self, info: WorkerInfo, ttl: float) -> None:
        key = self._keys.worker(info.worker_id)
        async with self._b.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=info_to_hash(info))
            pipe.pexpire(key, ms(2 * ttl))
            pipe.zadd(self._keys.workers, {info.worker_id: self._b.clock() + ttl})
            await pipe.execute()

    @unavailable_on_loss
    async def live_workers(self) -> list[WorkerInfo]:
        now = self._b.clock()
        index = await self._b.client.zrangebyscore(self._keys.workers, f"({now!r}", "+inf")
        ids = [str(worker_id) for worker_id in index]
        if not ids:
            return []
        async with self._b.client.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.hgetall(self._keys.worker(worker_id))
                pipe.llen(self._keys.worker_queue(worker_id))
                pipe.llen(self._keys.worker_active(worker_id))
            replies = await pipe.execute()
        live = []
        for i in range(0, len(replies), 3):
            fields, queued, active = replies[i : i + 3]
            if fields:
                live.append(info_from_hash(fields, int(queued) + int(active)))
        return live

    @unavailable_on_loss
    async def expired_workers(self, now: float) -> list[str]:
        index = await self._b.client.zrangebyscore(self._keys.workers, "-inf", repr(now))
        return [str(worker_id) for worker_id in index]

    @unavailable_on_loss
    async def reap(self, epoch: int, worker_id: str) -> Reaped:
        k = self._keys
        keys = [
            k.epoch,
            k.workers,
            k.worker(worker_id),
            k.worker_queue(worker_id),
            k.worker_active(worker_id),
            *k.queues,
            k.wake,
        ]
        try:
            queued, active = await self._b.run("reap", keys, [str(epoch), worker_id])
        except redis_errors.ResponseError as exc:
            raise stale_epoch(exc, epoch) or exc from exc
        return Reaped(worker_id, decode_all(queued), decode_all(active))

    @unavailable_on_loss
    async def deregister(self, worker_id: str) -> None:
        k = self._keys
        async with self._b.client.pipeline(transaction=True) as pipe:
            pipe.zrem(k.workers, worker_id)
            pipe.delete(k.worker(worker_id), k.worker_queue(worker_id), k.worker_active(worker_id))
            await pipe.execute()


# -- LeaderLease ------------------------------------------------------------------------------


def lease_value(lease: Lease) -> str:
    return f"{lease.holder}|{lease.epoch}"


class RedisLeaderLease:
    """``scheduler:leader`` holds ``holder|epoch`` with a PX TTL; ``scheduler:epoch`` only rises."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend
        self._keys = backend.keys

    @unavailable_on_loss
    async def acquire(self, holder: str, ttl: float, min_epoch: int = 0) -> Lease | None:
        keys = [self._keys.leader, self._keys.epoch]
        epoch = await self._b.run("lease_acquire", keys, [holder, ms(ttl), min_epoch])
        return None if epoch is None else Lease(holder, int(epoch))

    @unavailable_on_loss
    async def renew(self, lease: Lease, ttl: float) -> bool:
        args = [lease_value(lease), ms(ttl)]
        return bool(await self._b.run("lease_renew", [self._keys.leader], args))

    @unavailable_on_loss
    async def release(self, lease: Lease) -> None:
        await self._b.run("lease_release", [self._keys.leader], [lease_value(lease)])

    @unavailable_on_loss
    async def current(self) -> Lease | None:
        value = await self._b.client.get(self._keys.leader)
        if value is None:
            return None
        holder, _, epoch = str(value).rpartition("|")
        return Lease(holder, int(epoch))

    @unavailable_on_loss
    async def publish_status(self, status: dict[str, float], ttl: float) -> None:
        key = self._keys.leader_status
        async with self._b.client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if status:
                pipe.hset(key, mapping={name: repr(ts) for name, ts in status.items()})
                pipe.pexpire(key, ms(ttl))
            await pipe.execute()

    @unavailable_on_loss
    async def status(self) -> dict[str, float]:
        found = await self._b.client.hgetall(self._keys.leader_status)
        return {str(name): float(ts) for name, ts in found.items()}


# -- CancelSignals ----------------------------------------------------------------------------


class RedisCancelSignals:
    """A flag per task (``task:cancel:{id}`` with TTL) plus a pub/sub message for speed."""

    #: How long ``listen`` waits for one message before checking the connection again.
    POLL = 1.0

    def __init__(self, backend: Backend) -> None:
        self._b = backend
        self._keys = backend.keys

    @unavailable_on_loss
    async def request(self, task_id: str, ttl: float) -> None:
        async with self._b.client.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.cancel(task_id), "1", px=ms(ttl))
            pipe.publish(self._keys.cancel_channel, task_id)
            await pipe.execute()

    @unavailable_on_loss
    async def requested(self, task_ids: Sequence[str]) -> set[str]:
        if not task_ids:
            return set()
        flags = await self._b.client.mget([self._keys.cancel(t) for t in task_ids])
        return {t for t, flag in zip(task_ids, flags, strict=True) if flag is not None}

    async def listen(self) -> AsyncIterator[str]:
        """Yield cancelled ids for as long as the caller iterates, resubscribing after a lost
        connection. Messages published while disconnected are missed; the flags cover them."""
        delays = reconnect_delays()
        while not self._b.closing.is_set():
            pubsub = self._b.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._keys.cancel_channel)
                delays.reset()
                while not self._b.closing.is_set():
                    message = await pubsub.get_message(timeout=self.POLL)
                    if message is not None and message["type"] == "message":
                        yield str(message["data"])
            except LOST as exc:
                log.warning("redis cancel subscription lost, resubscribing: %s", exc)
                await asyncio.sleep(delays.next())
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]


# -- Assembly ---------------------------------------------------------------------------------


def load_scripts(client: aioredis.Redis) -> dict[str, AsyncScript]:
    """Register every Lua script; ``AsyncScript`` uses EVALSHA and reloads on NOSCRIPT."""
    folder = resources.files("conveyor.coordination").joinpath("lua")
    return {
        name: client.register_script(folder.joinpath(f"{name}.lua").read_text("utf-8"))
        for name in SCRIPTS
    }


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
) -> Coordination:
    """Open a client for ``url`` (forms in the module docstring), check it answers, and build
    the backend. ``retries`` bounds redis-py's retry of one command (about 8 s at the default);
    ``client_name`` shows in ``CLIENT LIST`` so operators can tell components apart."""
    client, sentinel = open_client(url, retries, client_name)
    backend = Backend(client, Keys(prefix), load_scripts(client), clock, sentinel=sentinel)
    try:
        await client.ping()
    except LOST as exc:
        await backend.close()
        raise BackendUnavailable(f"redis at {redact(url)} is unreachable: {exc}") from exc
    return RedisCoordination(backend).as_coordination()
