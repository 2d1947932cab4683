"""The engine every part of the store shares, and the ways they use it: reads, transactions,
the one portable upsert.

Parts open their connections here rather than on the engine, so what a connection does on
every database (the SQLite pragmas) and what a failure means above the store are decided in one
place: a connection that cannot be made or is lost (any driver error but an integrity one, or an
``OSError`` from a driver's socket) leaves as ``BackendUnavailable``, which callers retry. An
``IntegrityError`` passes through: it is an answer from a working database (an idempotency race,
an epoch handed out twice) that the part which caused it turns into its own result. A value the
database refuses as data (a driver ``DataError``, SQLSTATE class 22) is ``Refused``: retrying
cannot help, and a batch holding it is split so only its own member fails (``batches``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from conveyor.errors import BackendUnavailable, Conflict, Refused

_UPSERT_TRIES = 3
# A host cut off in the middle of a transaction leaves its connection open on the server (no
# packet says the client is gone), and the transaction keeps its row locks: every process that
# needs those rows stalls up to the lock-wait timeout (50 s on MariaDB), again and again, until
# TCP gives up hours later. Conveyor's transactions never sit idle between statements for
# long, so the server ends one that does and its locks go with it (tests/hosts/test_failover).
IDLE_TRANSACTION_TIMEOUT = 15  # seconds
DEADLOCK_TRIES = 4
# What a database answers when it aborted a transaction to break a deadlock (or, on
# PostgreSQL, a serialization conflict): running the transaction again is correct and enough.
_DEADLOCK_CODES = (1213,)  # MariaDB / MySQL ER_LOCK_DEADLOCK
_DEADLOCK_STATES = ("40P01", "40001")  # PostgreSQL deadlock_detected, serialization_failure
T = TypeVar("T")
log = logging.getLogger(__name__)
# What ``upsert`` calls in the transaction that wrote, with the row as it was (None: new).
Written = Callable[[AsyncConnection, "sa.RowMapping | None"], Awaitable[None]]


class Database:
    def __init__(self, url: sa.URL, echo: bool = False) -> None:
        self.engine: AsyncEngine = _make_engine(url, echo)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads."""
        with backend_errors():
            async with self.engine.connect() as conn:
                yield conn

    @asynccontextmanager
    async def begin(self, *, read_committed: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction that commits when the block ends.

        ``read_committed`` on MariaDB/MySQL (PostgreSQL's default already; SQLite has one
        writer): no gap locks, and rows a statement reads but does not change are not locked
        nor waited for, so a bulk delete whose plan scans more than its rows cannot block or
        deadlock with the hot path's inserts."""
        with backend_errors():
            async with self.engine.connect() as conn:
                if read_committed and conn.dialect.name in ("mysql", "mariadb"):
                    await conn.execution_options(isolation_level="READ COMMITTED")
                async with conn.begin():
                    yield conn

    async def transaction(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``work`` in a transaction of its own, run again when the database aborted it to
        break a deadlock. Moves of many rows lock them in id order (parents before children:
        a workflow numbers its nodes so), yet rows stored in another order (a child whose id
        sorts before its parent's) can still meet a transaction taking them the other way;
        the victim then rolls back whole, so a second run is safe. ``work`` must write nothing
        outside the transaction (events are emitted by the caller after it returns)."""
        for attempt in range(1, DEADLOCK_TRIES):
            try:
                async with self.begin() as conn:
                    return await work(conn)
            except BackendUnavailable as exc:
                if not _deadlocked(exc.__cause__):
                    raise
                log.warning("transaction rolled back by the database to break a deadlock "
                            "(try %d of %d); running it again", attempt, DEADLOCK_TRIES)
                await asyncio.sleep(random.uniform(0.0, 0.02 * attempt))
        async with self.begin() as conn:
            return await work(conn)

    async def rows(self, query: sa.Select[Any]) -> Sequence[sa.RowMapping]:
        """Every row of one read, on a connection of its own."""
        async with self.connect() as conn:
            found: Sequence[sa.RowMapping] = (await conn.execute(query)).mappings().all()
        return found

    async def first(self, query: sa.Select[Any]) -> sa.RowMapping | None:
        found = await self.rows(query.limit(1))
        return found[0] if found else None

    async def migrate(self) -> None:
        from conveyor.store.migrate import upgrade

        with backend_errors():
            await upgrade(self.engine)

    async def upsert(
        self, table: sa.Table, key: dict[str, Any], row: dict[str, Any],
        created: dict[str, Any] | None = None,
        *, then: Written | None = None,
    ) -> None:
        """Update-then-insert of the row whose primary key is ``key`` (column → value):
        portable across the three databases; a lost insert race
        retries as an update. The two run in separate transactions: in one, two first inserts
        deadlock on MariaDB (each UPDATE of a missing key gap-locks the same range, then each
        INSERT waits for the other's gap lock). ``created`` holds what only a new row gets
        (a first-seen time), so a retried update never overwrites it, and what a new row gets
        instead of an update's expression.

        The UPDATE sets the columns in the order of ``row``: MySQL evaluates SET assignments
        left to right, so an expression that reads a column must come before that column.

        Three lost races in a row mean the row keeps appearing and vanishing under us (or the
        database refuses the row itself): ``Conflict``, never a silent no-op.

        ``then`` runs in the transaction that wrote, with the row as it was before (read
        ``FOR UPDATE`` first, so no one changes it in between; None when inserted): an audit
        row of the change commits with it or not at all."""
        match = [table.c[name] == value for name, value in key.items()]
        for attempt in range(1, _UPSERT_TRIES + 1):
            try:
                async with self.begin() as conn:
                    before = None
                    if then is not None:
                        lock = sa.select(table).where(*match).with_for_update()
                        before = (await conn.execute(lock)).mappings().first()
                    result = await conn.execute(
                        table.update().where(*match).ordered_values(*row.items())
                    )
                    if result.rowcount and then is not None:
                        await then(conn, before)
                if result.rowcount:
                    return
                async with self.begin() as conn:
                    await conn.execute(
                        table.insert().values({**key, **row, **(created or {})})
                    )
                    if then is not None:
                        await then(conn, None)
                return
            except IntegrityError as exc:
                if attempt == _UPSERT_TRIES:
                    raise Conflict(
                        f"{table.name} {tuple(key.values())!r} not written after {attempt} tries"
                    ) from exc

    async def close(self) -> None:
        await self.engine.dispose()


@contextmanager
def backend_errors() -> Iterator[None]:
    try:
        yield
    except IntegrityError:
        raise
    except DBAPIError as exc:
        if isinstance(exc, DataError) or str(getattr(exc.orig, "sqlstate", "")).startswith("22"):
            raise Refused(f"the database refused a value: {exc.orig}") from exc
        raise BackendUnavailable(f"database unreachable: {exc}") from exc
    except OSError as exc:
        raise BackendUnavailable(f"database unreachable: {exc}") from exc


def _deadlocked(exc: BaseException | None) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    return code in _DEADLOCK_CODES or getattr(exc.orig, "sqlstate", None) in _DEADLOCK_STATES


#: No rollback when a connection goes back to the pool. Every use of a connection here is a
#: ``Connection`` that ends its own transaction (a commit, or the rollback ``close`` issues for a
#: transaction still open), and SQLAlchemy skips the pool's reset only in the second case: after
#: every commit it sent one ROLLBACK more, a round trip on each of the hot path's transactions.
RESET_ON_RETURN = None


def _make_engine(url: sa.URL, echo: bool) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30},
                                     pool_reset_on_return=RESET_ON_RETURN)

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the single writer; NORMAL sync is durable across
            # process crashes, which is what standalone mode promises.
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    engine = create_async_engine(url, echo=echo, pool_size=10, max_overflow=20,
                                 pool_reset_on_return=RESET_ON_RETURN,
                                 connect_args=_session_limits(url))
    _ping_when_idle(engine)
    return engine


#: A pooled connection back in the pool for longer than this is pinged before it is used again.
PING_AFTER_IDLE = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """``pool_pre_ping``, but only for a connection that sat idle: pinging every checkout was
    one round trip more on every transaction of the hot path (a create, a worker's start and
    finish batches). A connection that has been idle (the database may have restarted or
    dropped it meanwhile) is still pinged, and a dead one replaced before use; one that
    answered within the last second is used at once, and if the server dropped it in that
    second its first statement fails like any statement cut short (``BackendUnavailable``,
    which callers retry), and the pool discards its stale connections."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @sa.event.listens_for(pool, "connect")
    def _fresh(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned"] = time.monotonic()

    @sa.event.listens_for(pool, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned"] = time.monotonic()

    @sa.event.listens_for(pool, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("returned", 0.0) <= PING_AFTER_IDLE:
            return
        try:
            alive = dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool replaces it (up to three tries), as pre_ping does
            raise sa.exc.DisconnectionError(f"stale pooled connection: {exc}") from exc
        if not alive:
            raise sa.exc.DisconnectionError("stale pooled connection")


def _session_limits(url: sa.URL) -> dict[str, Any]:
    """Connect arguments that end a transaction left idle (``IDLE_TRANSACTION_TIMEOUT``)."""
    driver = url.get_driver_name()
    if driver == "asyncmy":  # MariaDB runs /*M! ... */; MySQL, which has no such limit, skips it
        return {"init_command":
                f"/*M! SET SESSION idle_transaction_timeout = {IDLE_TRANSACTION_TIMEOUT} */"}
    if driver == "asyncpg":
        ms = str(IDLE_TRANSACTION_TIMEOUT * 1000)
        return {"server_settings": {"idle_in_transaction_session_timeout": ms}}
    return {}
