"""What the five Redis parts share: one client, the key names, the scripts and the clock
(``Backend``), and the two ways a lost connection is handled.

Connection loss never crashes a caller on the first blip: redis-py retries every command with
exponential backoff (``Retry``, configured in ``connection``), and the long-lived calls
(``fetch``, ``wait_for_work``, ``listen``) reconnect on their own for as long as they run. A
command that still fails after its retries raises ``BackendUnavailable``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.sentinel import Sentinel
from redis.commands.core import AsyncScript

from conveyor.coordination.keys import Keys
from conveyor.errors import BackendUnavailable, StaleEpoch
from conveyor.models import QueueItem
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
SCRIPTS = (
    "enqueue",
    "peek",
    "heads",
    "assign",
    "remove",
    "promote_due",
    "fetch",
    "ack",
    "hand_back",
    "reap",
    "tracked",
    "live",
    "lease_acquire",
    "lease_renew",
    "lease_release",
    "take_tokens",
)
#: Scripts that push to or pop from the priority queues: ``lua/fair.lua`` (the queue layout's
#: functions) is prepended to each, since a Redis script cannot load another.
FAIR_SCRIPTS = frozenset(
    {"enqueue", "peek", "heads", "assign", "remove", "promote_due", "hand_back", "reap"}
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

    @property
    def client_name(self) -> str | None:
        """The name every connection of this client gives itself (``CLIENT SETNAME``)."""
        name = self.client.connection_pool.connection_kwargs.get("client_name")
        return str(name) if name else None

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


def load_scripts(client: aioredis.Redis) -> dict[str, AsyncScript]:
    """Register every Lua script; ``AsyncScript`` uses EVALSHA and reloads on NOSCRIPT."""
    folder = resources.files("conveyor.coordination").joinpath("lua")
    lib = folder.joinpath("fair.lua").read_text("utf-8")

    def source(name: str) -> str:
        text = folder.joinpath(f"{name}.lua").read_text("utf-8")
        return f"{lib}\n{text}" if name in FAIR_SCRIPTS else text

    return {name: client.register_script(source(name)) for name in SCRIPTS}
