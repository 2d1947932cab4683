"""Serving an ASGI app on a socket this process bound itself, and the one readiness check.

Both HTTP servers of a process (the API, and the metrics port of schedulers and workers) go
through here. The socket is bound before anything else starts, so a taken port fails the
process before it registers a worker or takes the scheduler lease, and port 0 yields a known
port before anyone connects. uvicorn's own signal handling is switched off: the process's
lifecycle owner (``process.Process``) decides when and in which order things stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

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


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServedApp:
    """One ASGI app served on one bound socket, from ``start`` until ``stop``."""

    def __init__(self, app: Any, sock: socket.socket, name: str) -> None:
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", ws="none",
            log_config=None,
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
