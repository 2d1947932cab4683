"""Run one Conveyor process: any mix of API server, scheduler and worker on shared components.

Start order: store ready → worker registered → scheduler → API accepting. Stop order is the
reverse and is written out in ``_shutdown``: the API stops taking requests first, the scheduler
stops placing work (and releases its lease so a peer takes over at once), then the worker
drains, and only then are the backends closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from conveyor.api.app import create_app
from conveyor.bootstrap import Components, build
from conveyor.config import Settings
from conveyor.duty import Duty, Supervisor, retrying
from conveyor.errors import ConfigError
from conveyor.observability.sampler import Sampler
from conveyor.observability.server import MetricsServer, backends_ready
from conveyor.scheduler import Scheduler
from conveyor.worker import Worker

log = logging.getLogger(__name__)

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: this process decides how to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Runner:
    def __init__(
        self, settings: Settings, *, api: bool, scheduler: bool, worker: bool,
        standalone: bool = False,
    ) -> None:
        self.settings = settings
        self.roles = {"api": api, "scheduler": scheduler, "worker": worker}
        self.standalone = standalone
        self._stop = asyncio.Event()
        self._server_task: asyncio.Task[None] | None = None
        self._metrics_server: MetricsServer | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        # Bind first: a taken port must fail before this process registers or takes a lease.
        listener = self._bind() if self.roles["api"] else None
        parts = await build(self.settings, standalone=self.standalone)
        scheduler = parts.scheduler() if self.roles["scheduler"] else None
        worker = parts.worker() if self.roles["worker"] else None
        parts.metrics.observe(Sampler(
            parts.coordination if self.roles["api"] or self.roles["scheduler"] else None,
            scheduler=scheduler, worker=worker,
            stats=parts.store.stats if self.roles["api"] else None,
        ))
        server: _Server | None = None
        supervisor = Supervisor([])
        try:
            await self._prepare(parts, scheduler, worker)
            await self._serve_metrics(parts)
            supervisor = Supervisor(_duties(scheduler, worker))
            supervisor.start()
            server = self._serve(parts, listener) if listener is not None else None
            failure = await self._wait(supervisor, server)
        finally:
            await self._shutdown(parts, supervisor, server, scheduler, worker)
        return 1 if failure else 0

    async def _prepare(
        self, parts: Components, scheduler: Scheduler | None, worker: Worker | None
    ) -> None:
        if self.standalone:
            await parts.store.migrate()
        await retrying(parts.store.ping, "reaching the database")
        for listener in parts.listeners:
            start = getattr(listener, "start", None)
            if start is not None:
                await start()
        if worker is not None:
            await retrying(worker.register, "registering the worker")
        if scheduler is not None and self.standalone:
            # The in-process queues start empty: rebuild them from the store before serving.
            await scheduler.elector.run_once(time.time())
            await scheduler.orphans.sweep(time.time(), min_age=0.0)

    def auth_required(self) -> bool:
        """Keys are required unless asked otherwise, except for standalone on loopback."""
        if self.settings.auth_required is not None:
            return self.settings.auth_required
        return not (self.standalone and self.settings.host in LOOPBACK)

    async def _serve_metrics(self, parts: Components) -> None:
        """The metrics port (``--metrics-port``): /metrics, /healthz, /readyz."""
        if self.settings.metrics_port is None:
            return
        self._metrics_server = MetricsServer(
            parts.metrics, self.settings.metrics_port,
            backends_ready(parts.store, parts.coordination), host=self.settings.host,
        )
        await self._metrics_server.start()

    def _bind(self) -> socket.socket:
        host, port = self.settings.host, self.settings.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it every keep-alive request waits ~40 ms (Nagle plus
        # delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.settings.reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(2048)
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        return sock

    def _serve(self, parts: Components, listener: socket.socket) -> _Server:
        auth = self.auth_required()
        if not auth:
            log.warning("API keys are not required: anyone who can reach %s may act as admin",
                        self.settings.host)
        config = uvicorn.Config(
            create_app(parts.service, auth_required=auth, metrics=parts.metrics),
            host=self.settings.host,
            port=self.settings.port,
            log_level="warning", access_log=False, lifespan="off",
        )
        server = _Server(config)
        log.info("API listening on http://%s:%d", self.settings.host, self.settings.port)
        self._server_task = asyncio.create_task(server.serve([listener]), name="api-server")
        return server

    async def _wait(self, supervisor: Supervisor, server: _Server | None) -> bool:
        """Wait for a stop request, a dead duty or a dead API server; True on failure."""
        waiters: set[asyncio.Task[Any]] = {asyncio.create_task(self._stop.wait(), name="stop")}
        if supervisor.duties:
            waiters.add(asyncio.create_task(supervisor.wait(), name="supervisor"))
        if self._server_task is not None:
            waiters.add(self._server_task)
        done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        failed = False
        for task in done:
            if task.get_name() == "supervisor" and task.result() is not None:
                failed = True
            if task.get_name() == "api-server":
                failed = failed or task.exception() is not None or not self._stop.is_set()
        for task in pending:
            if task is not self._server_task:
                task.cancel()
        return failed

    async def _shutdown(
        self, parts: Components, supervisor: Supervisor, server: _Server | None,
        scheduler: Scheduler | None, worker: Worker | None,
    ) -> None:
        log.info("stopping")
        if server is not None and self._server_task is not None:
            server.should_exit = True
            await asyncio.gather(self._server_task, return_exceptions=True)
        if scheduler is not None:
            for duty in reversed(scheduler.duties):
                await duty.stop()
        if worker is not None:
            await worker.shutdown()
        await supervisor.stop()
        for listener in parts.listeners:
            stop = getattr(listener, "stop", None)
            if stop is not None:
                await stop()
        if self._metrics_server is not None:  # last: scrapable while the worker drains
            await self._metrics_server.stop()
        await parts.close()
        log.info("stopped")


def _duties(scheduler: Scheduler | None, worker: Worker | None) -> list[Duty]:
    return [*(worker.duties if worker else []), *(scheduler.duties if scheduler else [])]
