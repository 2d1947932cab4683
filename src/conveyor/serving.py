"""Serving an ASGI app on a socket this process bound itself, and the one readiness check.

Both HTTP servers of a process (the API, and the metrics port of schedulers and workers) go
through here. The socket is bound before anything else starts, so a taken port fails the
process before it registers a worker or takes the scheduler lease, and port 0 yields a known
port before anyone connects. uvicorn's own signal handling is switched off: the process's
lifecycle owner (``process.Process``) decides when and in which order things stop.

Both also share the connection limits (``server`` settings), because a server that anyone can
connect to must survive clients that connect and say nothing: a connection that has not
delivered its request headers within ``header_timeout`` is answered 408 and closed (uvicorn
times out only idle kept-alive connections), headers over ``max_header_bytes`` get 431, idle
kept-alive connections close after ``keep_alive_timeout``, and past ``max_connections`` open
connections the oldest one waiting for a request is closed to make room, or, when every one is
busy, the request is answered 503 at once rather than queued (``_GuardedProtocol``).
``raise_open_file_limit`` lifts the process's soft open-file limit to the hard one, so the
cap, not the kernel's EMFILE, is what a flood meets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.responses import JSONResponse
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from conveyor.config import ServerSettings
from conveyor.coordination.protocol import Coordination
from conveyor.errors import BackendUnavailable, ConfigError
from conveyor.store.protocol import TaskStore

log = logging.getLogger(__name__)


def bind(host: str, port: int, *, reuse_port: bool = False, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket; ``ConfigError`` naming the address when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP, and without it every keep-alive request waits ~40 ms (Nagle plus delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


# Open files a process needs besides its client connections (database and Redis pools, logs,
# the worker's executors): the connection cap is kept this far below the open-file limit.
RESERVED_FILES = 256


def raise_open_file_limit() -> int:
    """Lift the soft open-file limit to the hard one where the system allows; the new soft
    limit. Typical soft defaults (1,024) let a thousand silent sockets lock a server out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, wanted, exc)
    return soft


def connection_cap(wanted: int, open_files: int) -> int:
    """``server.max_connections``, lowered to what ``open_files`` leaves room for."""
    room = max(2, open_files - RESERVED_FILES)
    if wanted > room:
        log.warning("server.max_connections %d lowered to %d: the open-file limit is %d",
                    wanted, room, open_files)
    return min(wanted, room)


class _Config(uvicorn.Config):
    """uvicorn's config plus what its protocols lack: a header timeout, and the connections of
    this server that wait for a request (oldest first), which may be closed to make room."""

    def __init__(self, app: Any, limits: ServerSettings, cap: int, **options: Any) -> None:
        super().__init__(
            app, http=_GuardedProtocol, timeout_keep_alive=limits.keep_alive_timeout, **options
        )
        self.header_timeout = limits.header_timeout
        self.max_header_bytes = limits.max_header_bytes
        self.max_connections = cap
        self.waiting: dict[_GuardedProtocol, None] = {}


class _GuardedProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request's headers, and room made
    for a new connection past the cap by closing the oldest one that waits for a request.

    A connection waits from when it opens, or its last response ends, until a request's headers
    are complete; the header deadline runs from the open or the request's first byte (uvicorn's
    keep-alive timer covers the idle time before it). Evicting the oldest waiting connection
    means a flood of silent sockets costs its own members, never a client that sends its request
    at once; only when every connection is busy are requests refused (uvicorn's 503).
    """

    config: _Config
    _header_timer: asyncio.TimerHandle | None = None
    _header_bytes: int | None = None  # received while a request's headers are pending

    def data_received(self, data: bytes) -> None:
        if self._header_bytes is not None:
            self._header_bytes += len(data)
        super().data_received(data)
        # Checked after parsing, so a chunk that completes the headers and carries body bytes
        # is not counted against the headers; one chunk is at most 256 kB.
        limit = self.config.max_header_bytes
        if self._header_bytes is not None and self._header_bytes > limit:
            self._done_waiting()
            self._refuse(b"431 Request Header Fields Too Large", "too_large",
                         f"the request headers are over the {limit}-byte limit "
                         "(server.max_header_bytes)")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()
        self._wait()
        if len(self.connections) > self.config.max_connections:
            oldest = next(iter(self.config.waiting))
            if oldest is not self:
                oldest._done_waiting()  # now, so the next newcomer evicts the next oldest
                oldest.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._done_waiting()
        cap = self.config.max_connections
        if len(self.connections) <= cap and len(self.tasks) < cap:
            super().on_headers_complete()
            return
        app, self.app = self.app, _busy  # uvicorn starts this request's cycle with self.app
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle.response_complete:  # none pipelined
            self._wait()

    def connection_lost(self, exc: Exception | None) -> None:
        self._done_waiting()
        super().connection_lost(exc)

    def _wait(self) -> None:
        self.config.waiting[self] = None
        self._header_bytes = 0

    def _arm(self) -> None:
        timeout = self.config.header_timeout
        self._header_timer = self.loop.call_later(timeout, self._expired, timeout)

    def _done_waiting(self) -> None:
        self.config.waiting.pop(self, None)
        self._header_bytes = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self, timeout: float) -> None:
        self._header_timer = None
        self._refuse(b"408 Request Timeout", "timeout",
                     f"the request headers did not arrive within {timeout:g} s "
                     "(server.header_timeout)")

    def _refuse(self, status: bytes, code: str, message: str) -> None:
        """Answer in the project's error shape and close, outside any request cycle."""
        if self.transport.is_closing():
            return
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
            + body
        )
        self.transport.close()


async def _busy(scope: Any, receive: Any, send: Any) -> None:
    """The answer when every connection under the cap is busy with a request."""
    response = JSONResponse(
        {"error": {"code": "busy", "message": "the server is at its connection cap "
                   "(server.max_connections); retry shortly"}},
        status_code=503, headers={"connection": "close", "retry-after": "1"},
    )
    await response(scope, receive, send)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServedApp:
    """One ASGI app served on one bound socket, from ``start`` until ``stop``."""

    def __init__(
        self, app: Any, sock: socket.socket, name: str, limits: ServerSettings | None = None
    ) -> None:
        limits = limits or ServerSettings()
        config = _Config(
            app, limits, connection_cap(limits.max_connections, raise_open_file_limit()),
            log_level="warning", access_log=False, lifespan="off", ws="none", log_config=None,
        )
        self._server = _QuietServer(config)
        self._socket = sock
        self.name = name
        self.task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return int(self._socket.getsockname()[1])

    def start(self) -> asyncio.Task[None]:
        # The socket already listens: connections wait in the kernel until uvicorn accepts
        # them, so there is nothing to wait for here.
        self.task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name=self.name)
        return self.task

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish, close the socket."""
        if self.task is not None:
            self._server.should_exit = True
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        self._socket.close()


async def check_backends(
    store: TaskStore, coordination: Coordination, timeout: float = 2.0
) -> None:
    """Readiness: raise ``BackendUnavailable`` naming the backend unless both answer in time."""
    try:
        async with asyncio.timeout(timeout):
            await store.ping()
    except Exception as exc:
        raise BackendUnavailable(f"store unreachable: {exc!r}") from exc
    try:
        async with asyncio.timeout(timeout):
            await coordination.queues.lengths()
    except Exception as exc:
        raise BackendUnavailable(f"coordination backend unreachable: {exc!r}") from exc
