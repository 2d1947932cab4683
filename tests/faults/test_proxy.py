"""The fault proxy and the business service, against tiny local servers (a second or two)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.faults.business import BusinessService
from tests.faults.proxy import Proxy, ProxyHub


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A threaded TCP echo server."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        server.close()


@pytest.fixture
def proxy(echo_port: int) -> Iterator[Proxy]:
    with ProxyHub() as hub:
        yield hub.add("echo", "127.0.0.1", echo_port)


def connect(proxy: Proxy, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)


def roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_pass_forwards_both_ways(proxy: Proxy) -> None:
    with connect(proxy) as sock:
        assert roundtrip(sock, b"hello") == b"hello"
        assert roundtrip(sock, b"x" * 200_000) == b"x" * 200_000
    assert proxy.stats.accepted == 1


def test_delay_adds_latency_to_each_round_trip(proxy: Proxy) -> None:
    with connect(proxy) as sock:
        assert roundtrip(sock, b"warm") == b"warm"
        proxy.set("delay", 0.3)
        began = time.monotonic()
        assert roundtrip(sock, b"slow") == b"slow"
        took = time.monotonic() - began
        proxy.set("pass")
        began = time.monotonic()
        assert roundtrip(sock, b"fast") == b"fast"
        fast = time.monotonic() - began
    assert 0.25 <= took < 1.0, took
    assert fast < 0.2, fast


def test_blackhole_holds_everything_until_it_heals(proxy: Proxy) -> None:
    with connect(proxy) as held:
        proxy.set("blackhole")
        with connect(proxy, timeout=0.3) as fresh:  # accepted, never answered
            fresh.sendall(b"anyone?")
            with pytest.raises(TimeoutError):
                fresh.recv(10)
        held.settimeout(0.3)
        held.sendall(b"during")
        with pytest.raises(TimeoutError):
            held.recv(10)
        proxy.set("pass")
        held.settimeout(2)
        assert roundtrip(held, b"") == b"" and held.recv(6) == b"during"
        assert roundtrip(held, b"after") == b"after"


def test_reset_closes_open_and_new_connections_with_rst(proxy: Proxy) -> None:
    with connect(proxy) as sock:
        assert roundtrip(sock, b"up") == b"up"
        proxy.set("reset")
        with pytest.raises(ConnectionResetError):
            sock.sendall(b"x")
            sock.recv(10)
    with pytest.raises(ConnectionResetError), connect(proxy) as sock:
        sock.sendall(b"x")
        sock.recv(10)
    proxy.set("pass")
    with connect(proxy) as sock:
        assert roundtrip(sock, b"back") == b"back"
    assert proxy.stats.reset >= 2


def test_drop_reply_forwards_requests_and_resets_when_lifted(proxy: Proxy) -> None:
    with connect(proxy) as sock:
        proxy.set("drop_reply")
        sock.settimeout(0.3)
        sock.sendall(b"lost")
        with pytest.raises(TimeoutError):
            sock.recv(10)
        assert proxy.stats.bytes_up >= 4 and proxy.stats.dropped_replies >= 1
        proxy.set("pass")  # the connection is out of step now: it is reset
        sock.settimeout(2)
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            sock.sendall(b"x")
            if not sock.recv(10):
                raise ConnectionResetError("closed")
    with connect(proxy) as sock:
        assert roundtrip(sock, b"fresh") == b"fresh"


def test_business_service_behaves_as_asked() -> None:
    with BusinessService() as biz, httpx.Client(timeout=2) as http:
        def call(**payload: object) -> httpx.Response:
            return http.post(biz.url, json={"task_id": "t", "attempt": 1, "payload": payload},
                             headers={"Idempotency-Key": "t:1"})

        ok = call(n=1)
        assert ok.status_code == 200 and ok.json() == {"success": True,
                                                       "data": {"echo": {"n": 1}}}
        assert call(behave="error").status_code == 500
        began = time.monotonic()
        assert call(behave="slow", seconds=0.3).status_code == 200
        assert time.monotonic() - began >= 0.3
        with pytest.raises(httpx.TransportError):
            call(behave="reset")
        assert biz.deliveries["t:1"] == 4
