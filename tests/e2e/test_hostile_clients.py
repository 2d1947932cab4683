"""``conveyor standalone`` as a real process against hostile clients on real sockets.

The attacks of issue 10 as they were run: 1,100 sockets that connect and say nothing against a
process started with the usual 1,024-file soft limit, a web page's cross-site requests, and
key-less clients pushing 14 MB bodies. Each server runs on a free port and is killed in a
``finally``; every socket is closed and every wait bounded.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_standalone import clean_env
from tests.support.processes import conveyor_command, free_port

pytestmark = pytest.mark.slow

MB = 1_048_576


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _soft_files(limit: int) -> None:
    """In the child before exec: the soft open-file limit most systems start processes with."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


@contextmanager
def standalone(tmp_path: Path, env: dict[str, str], soft_files: int = 1024) -> Iterator[Served]:
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [conveyor_command(), "standalone", "--db", str(tmp_path / "c.db"),
             "--port", str(port)],
            cwd=tmp_path, env=clean_env(env), stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=lambda: _soft_files(soft_files),
        )
    served = Served(proc, port, log)
    try:
        deadline = time.monotonic() + 45
        while True:
            assert proc.poll() is None, f"server exited:\n{served.output()}"
            try:
                if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"server not healthy:\n{served.output()}"
            time.sleep(0.05)
        yield served
    finally:
        proc.kill()
        proc.wait(10)


def test_silent_connections_cannot_lock_out_healthz(tmp_path: Path) -> None:
    """1,100 sockets that never send a byte, against a 1,024-file soft limit and a cap of 300:
    /healthz and real requests are still served at once, and the process holds about the cap."""
    env = {"CONVEYOR_SERVER__MAX_CONNECTIONS": "300", "CONVEYOR_SERVER__HEADER_TIMEOUT": "60"}
    with standalone(tmp_path, env) as server, ExitStack() as sockets:
        for _ in range(1100):
            sock = sockets.enter_context(socket.socket())
            sock.settimeout(5)
            sock.connect(("127.0.0.1", server.port))
        time.sleep(1.0)  # let the server accept (and shed) them all
        with httpx.Client(base_url=server.url, timeout=3) as http:
            for _ in range(5):
                began = time.monotonic()
                assert http.get("/healthz", headers={"connection": "close"}).status_code == 200
                assert time.monotonic() - began < 2.0
            created = http.post("/api/v1/tasks", json={"task_type": "echo", "payload": {}})
            assert created.status_code == 201, created.text
        assert server.open_files() < 300 + 256, server.open_files()
        limits = Path(f"/proc/{server.proc.pid}/limits").read_text()
        soft, hard = next(
            line.split()[3:5] for line in limits.splitlines() if line.startswith("Max open files"))
        assert soft == hard, limits  # raised from 1,024 at start


def test_a_web_page_cannot_drive_a_local_standalone(tmp_path: Path) -> None:
    """What a visited page can make the browser send to a key-less standalone on loopback."""
    with standalone(tmp_path, {}) as server, httpx.Client(base_url=server.url, timeout=5) as http:
        csrf = http.post("/api/v1/queues/normal/pause", content=b"{}", headers={
            "Origin": "https://evil.example", "Content-Type": "text/plain"})
        assert csrf.status_code == 403, csrf.text
        plain = http.post("/api/v1/queues/normal/pause", content=b"{}",
                          headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415, plain.text
        rebound = http.get("/api/v1/tasks", headers={"Host": f"rebind.evil.example:{server.port}"})
        assert rebound.status_code == 421, rebound.text
        assert http.get("/api/v1/queues").json()["paused"] == []


def _push(port: int, size: int) -> tuple[int, int]:
    """A key-less POST declaring ``size`` bytes: its head and first 64 kB, then the rest only
    if no answer came within 3 s. (status, body bytes sent before the answer)."""
    with closing(socket.create_connection(("127.0.0.1", port), timeout=10)) as sock:
        sock.sendall(
            f"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode()
            + b" " * 65536
        )
        sent = 65536
        sock.settimeout(3)
        try:
            answer = sock.recv(4096)
        except TimeoutError:  # the server waits for the body: give it all
            sock.settimeout(30)
            sock.sendall(b" " * (size - sent))
            sent = size
            answer = sock.recv(4096)
        return int(answer.split()[1]), sent


def test_keyless_huge_bodies_are_refused_unread(tmp_path: Path) -> None:
    """Four key-less clients pushing 14 MB each get 401 before their bodies are taken in, and
    /healthz stays fast meanwhile."""
    with standalone(tmp_path, {"CONVEYOR_AUTH_REQUIRED": "true"}) as server, \
            ThreadPoolExecutor(4) as pool, httpx.Client(base_url=server.url, timeout=5) as http:
        pushes = [pool.submit(_push, server.port, 14 * MB) for _ in range(4)]
        latencies = []
        while not all(p.done() for p in pushes) or len(latencies) < 5:
            began = time.monotonic()
            assert http.get("/healthz").status_code == 200
            latencies.append(time.monotonic() - began)
            time.sleep(0.02)
        for push in pushes:
            status, sent = push.result(timeout=30)
            assert status == 401
            assert sent < 14 * MB, "the server read the whole body of a key-less request"
        assert max(latencies) < 0.2, latencies
        print(json.dumps({"healthz_max_ms": round(max(latencies) * 1000, 1),
                          "accepted_bytes": [p.result()[1] for p in pushes]}))
