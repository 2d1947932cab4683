"""A thin asyncio etcd v3 client: one gRPC channel, the KV, lease and watch calls this backend
uses, and transactions built from plain tuples.

The stubs and messages come from ``aetcd`` (``aetcd.rpc``, generated from etcd's own protos);
the channel is ours, because ``aetcd.Client`` dials exactly one ``host:port`` without TLS, and
Conveyor wants several endpoints (gRPC's ``ipv4:``/``ipv6:`` address lists with pick-first
failover), TLS and user/password auth. Every call maps a lost connection to
``BackendUnavailable``, the one error the duties and the API treat as "try again later".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import grpc
from aetcd import rpc

from conveyor.errors import BackendUnavailable
from conveyor.retry import RetryDelays

P = ParamSpec("P")
T = TypeVar("T")

#: Status codes that mean "etcd is not reachable right now" (a member down, no quorum yet).
LOST_CODES = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN,
})
CALL_TIMEOUT = 5.0
#: How often a compare-and-swap is retried when another process changed what it read.
CAS_ATTEMPTS = 200
#: Items per transaction: etcd refuses a transaction of more than 128 operations by default
#: (``--max-txn-ops``), and a queue move costs two or three per item plus the rings.
TXN_ITEMS = 40
#: Ranges per read transaction (the same server limit).
TXN_READS = 120


def chunks(items: Sequence[T], size: int = TXN_ITEMS) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


#: Retries of one call while etcd is unreachable (a member down, an election): 50 ms doubling
#: to 1 s, about 6 s in all, as redis-py's retry does for the Redis backend.
CALL_RETRIES = 9


class LeaseGone(BackendUnavailable):
    """etcd forgot a lease granted for the call (its data was reset, or the lease expired under
    a stalled process). The call that failed on it cannot succeed again as it is; the call
    around it, which granted the lease, runs again and grants a fresh one, instead of the error
    ending the process."""


def _lease_gone(exc: grpc.aio.AioRpcError) -> bool:
    return exc.code() == grpc.StatusCode.NOT_FOUND and "lease not found" in str(exc.details())


def unavailable_on_loss(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Retry a call that met a lost connection (gRPC moves on to the next endpoint meanwhile),
    or whose inner call lost its lease (``LeaseGone``), then raise ``BackendUnavailable``. A
    retried write is safe: the compare-and-swap callers re-read before they write again, and
    the other writes are idempotent."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        delays = RetryDelays(base=0.05, cap=1.0, spread=(0.5, 1.0))
        for attempt in range(CALL_RETRIES + 1):
            try:
                return await fn(*args, **kwargs)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED and attempt == 0:
                    # The auth token expired (etcd's simple tokens last minutes): log in again.
                    client = args[0] if args else None
                    if isinstance(client, EtcdClient) and await client.reauthenticate():
                        continue
                if _lease_gone(exc):
                    raise LeaseGone(f"etcd lost a lease: {exc.details()}") from exc
                if exc.code() not in LOST_CODES:
                    raise
                lost: BaseException = exc
                reason = str(exc.details())
            except (TimeoutError, ConnectionError, LeaseGone) as exc:
                lost, reason = exc, str(exc)
            if attempt == CALL_RETRIES:
                raise BackendUnavailable(f"etcd is unreachable: {reason}") from lost
            await asyncio.sleep(delays.next())
        raise AssertionError("unreachable")

    return wrapper


def prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` that makes a range cover every key starting with ``prefix``."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


@dataclass(frozen=True, slots=True)
class Kv:
    key: bytes
    value: bytes
    mod_revision: int
    lease: int


# Transaction parts, as plain tuples so callers stay free of protobuf:
#   compares: ("mod", key, revision) | ("value", key, bytes) | ("version", key, n)
#   ops:      ("put", key, value, lease) | ("delete", key) | ("delete_prefix", key)
Compare = tuple[str, bytes, Any]
Op = tuple[Any, ...]


def _compare(spec: Compare) -> Any:
    kind, key, want = spec
    if kind == "mod":
        return rpc.Compare(key=key, result=rpc.Compare.EQUAL, target=rpc.Compare.MOD,
                           mod_revision=want)
    if kind == "version":
        return rpc.Compare(key=key, result=rpc.Compare.EQUAL, target=rpc.Compare.VERSION,
                           version=want)
    return rpc.Compare(key=key, result=rpc.Compare.EQUAL, target=rpc.Compare.VALUE, value=want)


def _op(spec: Op) -> Any:
    if spec[0] == "put":
        _, key, value, lease = spec
        return rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value, lease=lease))
    if spec[0] == "delete_prefix":
        req = rpc.DeleteRangeRequest(key=spec[1], range_end=prefix_end(spec[1]))
        return rpc.RequestOp(request_delete_range=req)
    return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=spec[1]))


def _range(key: bytes, prefix: bool, limit: int, end: bytes | None = None) -> Any:
    range_end = end if end is not None else (prefix_end(key) if prefix else b"")
    return rpc.RangeRequest(key=key, range_end=range_end, limit=limit)


def _kvs(reply: Any) -> list[Kv]:
    return [Kv(kv.key, kv.value, kv.mod_revision, kv.lease) for kv in reply.kvs]


class EtcdClient:
    """The calls the backend makes, each with a deadline and auth metadata."""

    def __init__(self, channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()):
        self.channel = channel
        self.metadata = metadata
        self._credentials: tuple[str, str] | None = None
        self._kv = rpc.KVStub(channel)
        self._lease = rpc.LeaseStub(channel)
        self._watch = rpc.WatchStub(channel)

    @unavailable_on_loss
    async def authenticate(self, user: str, password: str) -> None:
        reply = await rpc.AuthStub(self.channel).Authenticate(
            rpc.AuthenticateRequest(name=user, password=password), timeout=CALL_TIMEOUT
        )
        self.metadata = (("token", reply.token),)
        self._credentials = (user, password)

    async def reauthenticate(self) -> bool:
        """Log in again with the credentials given before; False if there were none."""
        if self._credentials is None:
            return False
        await self.authenticate(*self._credentials)
        return True

    @unavailable_on_loss
    async def get(self, key: bytes) -> Kv | None:
        found = await self.range(key)
        return found[0] if found else None

    @unavailable_on_loss
    async def range(
        self, key: bytes, *, prefix: bool = False, limit: int = 0, end: bytes | None = None
    ) -> list[Kv]:
        reply = await self._kv.Range(
            _range(key, prefix, limit, end), timeout=CALL_TIMEOUT, metadata=self.metadata
        )
        return _kvs(reply)

    @unavailable_on_loss
    async def count(self, key: bytes) -> int:
        req = rpc.RangeRequest(key=key, range_end=prefix_end(key), count_only=True)
        reply = await self._kv.Range(req, timeout=CALL_TIMEOUT, metadata=self.metadata)
        return int(reply.count)

    @unavailable_on_loss
    async def snapshot(
        self, ranges: Sequence[tuple[bytes, bool, int]]
    ) -> tuple[int, list[list[Kv]]]:
        """Several ranges ``(key, is_prefix, limit)`` read in compare-less transactions, one
        revision per ``TXN_READS`` ranges; returns the first revision and each range's keys.
        Callers that write after reading compare revisions, so a split read is still safe."""
        revision, found = 0, []
        for part in chunks(ranges, TXN_READS):
            ops = [rpc.RequestOp(request_range=_range(k, p, n)) for k, p, n in part]
            reply = await self._kv.Txn(
                rpc.TxnRequest(success=ops), timeout=CALL_TIMEOUT, metadata=self.metadata
            )
            revision = revision or int(reply.header.revision)
            found += [_kvs(r.response_range) for r in reply.responses]
        return revision, found

    @unavailable_on_loss
    async def txn(self, compares: Sequence[Compare], ops: Sequence[Op]) -> bool:
        """Apply ``ops`` if every compare holds, all in one revision; False if one did not."""
        if not ops:
            return True
        req = rpc.TxnRequest(compare=[_compare(c) for c in compares], success=[_op(o) for o in ops])
        reply = await self._kv.Txn(req, timeout=CALL_TIMEOUT, metadata=self.metadata)
        return bool(reply.succeeded)

    @unavailable_on_loss
    async def put(self, key: bytes, value: bytes, lease: int = 0) -> None:
        req = rpc.PutRequest(key=key, value=value, lease=lease)
        await self._kv.Put(req, timeout=CALL_TIMEOUT, metadata=self.metadata)

    @unavailable_on_loss
    async def grant(self, ttl: float) -> int:
        """A lease for garbage collection: etcd counts whole seconds with a floor of a few, so
        expiry that matters is a timestamp in the value; the lease only removes the key later."""
        seconds = max(5, int(ttl) + 2)
        req = rpc.LeaseGrantRequest(TTL=seconds, ID=0)
        reply = await self._lease.LeaseGrant(req, timeout=CALL_TIMEOUT, metadata=self.metadata)
        return int(reply.ID)

    async def wait_change(self, key: bytes, prefix: bool, after: int, timeout: float) -> bool:
        """Wait up to ``timeout`` for a change to ``key`` (or under it) after revision
        ``after``; True if one came. A lost connection is a "no" (the caller asks again)."""
        create = rpc.WatchCreateRequest(
            key=key, range_end=prefix_end(key) if prefix else b"", start_revision=after + 1
        )
        call = self._watch.Watch(metadata=self.metadata)
        try:
            async with asyncio.timeout(timeout):
                await call.write(rpc.WatchRequest(create_request=create))
                async for reply in call:
                    if reply.events:
                        return True
                    if reply.canceled:
                        return True  # compacted past ``after``: something changed
        except (TimeoutError, grpc.aio.AioRpcError):
            return False
        finally:
            call.cancel()
        return False

    async def watch_puts(self, key: bytes) -> AsyncIterator[bytes]:
        """Yield the key of every put under ``key`` from now on, for as long as iterated."""
        create = rpc.WatchCreateRequest(key=key, range_end=prefix_end(key))
        call = self._watch.Watch(metadata=self.metadata)
        try:
            await call.write(rpc.WatchRequest(create_request=create))
            async for reply in call:
                for event in reply.events:
                    if event.type == rpc.Event.PUT:
                        yield bytes(event.kv.key)
        finally:
            call.cancel()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.channel.close()
