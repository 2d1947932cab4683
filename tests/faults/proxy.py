"""A small asyncio TCP fault proxy for the fault-injection suite (the kernel here has no netem).

One ``ProxyHub`` runs an event loop in a background thread; ``hub.add(name, host, port)``
opens one listening port for one upstream. Each ``Proxy`` has a mode, switchable at runtime
from any thread:

``pass``        forward both ways.
``delay``       forward both ways; every chunk read *from the client* waits ``seconds`` before
                it goes upstream (order kept), so each request/reply round trip gains that much.
``blackhole``   accept and read, never forward or answer. What a connection sent meanwhile is
                held, not lost, and goes on when the mode changes back (a partition that heals:
                TCP retransmits), so a client that waits long enough resumes where it was.
``reset``       every open connection is closed with a RST (``SO_LINGER 0``), and so is every
                new one at accept.
``drop_reply``  forward requests, discard replies. A connection that lost a reply is out of
                step with its server, so it is reset when the mode changes away.

Only the test's own processes point at a proxy; the test's own checks go straight to the
services.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

Mode = Literal["pass", "delay", "blackhole", "reset", "drop_reply"]
MODES: tuple[Mode, ...] = ("pass", "delay", "blackhole", "reset", "drop_reply")
CHUNK = 65536
T = TypeVar("T")


def abort_with_rst(writer: asyncio.StreamWriter) -> None:
    """Close at once with a TCP RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass
class Stats:
    accepted: int = 0
    reset: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    dropped_replies: int = 0


@dataclass(eq=False)
class _Link:
    """One client connection and its upstream connection."""

    proxy: Proxy
    client_r: asyncio.StreamReader
    client_w: asyncio.StreamWriter
    upstream_r: asyncio.StreamReader | None = None
    upstream_w: asyncio.StreamWriter | None = None
    tainted: bool = False  # lost a reply: out of step with its server
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closed: bool = False

    def close(self, rst: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for w in (self.client_w, self.upstream_w):
            if w is None:
                continue
            if rst:
                abort_with_rst(w)
            else:
                w.close()
        for t in self.tasks:
            t.cancel()
        self.proxy.links.discard(self)


class Proxy:
    """One listening port in front of one upstream; lives on the hub's loop."""

    def __init__(self, hub: ProxyHub, name: str, upstream: tuple[str, int]) -> None:
        self.hub = hub
        self.name = name
        self.upstream = upstream
        self.mode: Mode = "pass"
        self.delay = 0.0
        self.port = 0
        self.stats = Stats()
        self.links: set[_Link] = set()
        self._flowing = asyncio.Event()  # set unless blackholed
        self._flowing.set()
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- control, from any thread ------------------------------------------------------------

    def set(self, mode: Mode, seconds: float = 0.0) -> None:
        """Switch mode; ``seconds`` is the added latency for ``delay``."""
        assert mode in MODES, mode
        self.hub.call(self._set(mode, seconds))

    async def _set(self, mode: Mode, seconds: float) -> None:
        self.mode, self.delay = mode, seconds if mode == "delay" else 0.0
        if mode == "blackhole":
            self._flowing.clear()
        else:
            self._flowing.set()
        for link in list(self.links):
            if mode == "reset" or (mode != "drop_reply" and link.tainted):
                self.stats.reset += 1
                link.close(rst=True)

    # -- serving -------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self.links):
            link.close(rst=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        link = _Link(self, reader, writer)
        if self.mode == "reset":
            self.stats.reset += 1
            abort_with_rst(writer)
            return
        self.links.add(link)
        try:
            link.upstream_r, link.upstream_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            self.stats.reset += 1
            link.close(rst=True)  # the upstream is down: refuse as it would
            return
        up: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        down: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        link.tasks = [
            asyncio.create_task(self._read(link, link.client_r, up, upstream=True)),
            asyncio.create_task(self._write(link, link.upstream_w, up, upstream=True)),
            asyncio.create_task(self._read(link, link.upstream_r, down, upstream=False)),
            asyncio.create_task(self._write(link, link.client_w, down, upstream=False)),
        ]

    async def _read(
        self, link: _Link, reader: asyncio.StreamReader,
        queue: asyncio.Queue[tuple[float, bytes] | None], *, upstream: bool,
    ) -> None:
        try:
            while data := await reader.read(CHUNK):
                if not upstream and self.mode == "drop_reply":
                    self.stats.dropped_replies += 1
                    link.tainted = True
                    continue
                due = time.monotonic() + (self.delay if upstream else 0.0)
                queue.put_nowait((due, data))
        except (OSError, asyncio.IncompleteReadError):
            pass
        queue.put_nowait(None)

    async def _write(
        self, link: _Link, writer: asyncio.StreamWriter,
        queue: asyncio.Queue[tuple[float, bytes] | None], *, upstream: bool,
    ) -> None:
        try:
            while (item := await queue.get()) is not None:
                due, data = item
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
                if upstream:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
            # The other side closed: pass the FIN on once everything before it was delivered.
            await self._flowing.wait()
            with contextlib.suppress(OSError):
                writer.write_eof()
        except (OSError, ConnectionError):
            link.close(rst=True)
            return
        if all(t.done() or t is asyncio.current_task() for t in link.tasks):
            link.close()


class ProxyHub:
    """An event loop in a daemon thread hosting any number of proxies."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.proxies: list[Proxy] = []
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def add(self, name: str, host: str, port: int) -> Proxy:
        async def make() -> Proxy:
            proxy = Proxy(self, name, (host, port))
            await proxy.start()
            return proxy

        proxy = self.call(make())
        self.proxies.append(proxy)
        return proxy

    def close(self) -> None:
        async def stop_all() -> None:
            for proxy in self.proxies:
                await proxy.stop()

        with contextlib.suppress(Exception):
            self.call(stop_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()

    def __enter__(self) -> ProxyHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
