"""The metrics port of scheduler and worker processes: ``/metrics``, ``/healthz``, ``/readyz``.

Schedulers and workers serve no API, yet need to be scraped and probed like the API is; this is
a three-route Starlette app on its own uvicorn server, started and stopped by the runner beside
the duties. It binds its socket in ``start`` so a bad port fails the process at once, and so
port 0 (tests) yields a known port before anyone connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor.coordination.protocol import Coordination
from conveyor.observability.metrics import Metrics, metrics_response
from conveyor.store.protocol import TaskStore

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], Awaitable[None]]


def backends_ready(
    store: TaskStore, coordination: Coordination, timeout: float = 2.0
) -> ReadyCheck:
    """A readiness check that raises, naming the backend, unless both answer in time."""

    async def check() -> None:
        try:
            async with asyncio.timeout(timeout):
                await store.ping()
        except Exception as exc:
            raise RuntimeError(f"store unreachable: {exc!r}") from exc
        try:
            async with asyncio.timeout(timeout):
                await coordination.queues.lengths()
        except Exception as exc:
            raise RuntimeError(f"coordination backend unreachable: {exc!r}") from exc

    return check


def probe_app(metrics: Metrics, ready_check: ReadyCheck) -> Starlette:
    """The three routes, as an ASGI app (also usable in tests without a socket)."""

    async def scrape(request: Request) -> Response:
        return await metrics_response(metrics)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await ready_check()
        except Exception as exc:
            return JSONResponse({"status": "unready", "reason": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready"})

    return Starlette(routes=[
        Route("/metrics", scrape), Route("/healthz", healthz), Route("/readyz", readyz),
    ])


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the runner decides when the process stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class MetricsServer:
    """``probe_app`` served on ``host:port`` until ``stop``."""

    def __init__(
        self, metrics: Metrics, port: int, ready_check: ReadyCheck, *, host: str = "0.0.0.0"
    ) -> None:
        self._app = probe_app(metrics, ready_check)
        self._host = host
        self._wanted_port = port
        self._socket: socket.socket | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        if self._socket is None:
            return self._wanted_port
        return int(self._socket.getsockname()[1])

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._wanted_port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        config = uvicorn.Config(
            self._app, log_level="warning", access_log=False, lifespan="off", ws="none",
            log_config=None,
        )
        self._server = _Server(config)
        # The socket already listens: connections wait in the kernel until uvicorn accepts
        # them, so there is nothing to wait for here.
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="metrics")
        log.info("metrics on http://%s:%d/metrics", self._host, self.port)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.gather(self._task, return_exceptions=True)
        if self._socket is not None:
            self._socket.close()
        self._server = self._task = self._socket = None
