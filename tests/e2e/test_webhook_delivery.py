"""Webhooks as a user meets them: ``conveyor standalone`` with ``CONVEYOR_WEBHOOK_SECRET`` POSTs
a task's final state to its ``callback_url``, and the receiver checks it with
``conveyor.webhooks.verify``; a secret in the wrong format stops the start with a clear error."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conveyor.client import Client
from conveyor.webhooks import WebhookVerificationError, new_secret, verify
from tests.e2e.test_standalone import clean_env, standalone
from tests.support.processes import conveyor_command, free_port

pytestmark = pytest.mark.slow
Arrival = tuple[dict[str, str], bytes]


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[Arrival]]]:
    arrivals: queue.Queue[Arrival] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            arrivals.put((dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", arrivals
    finally:
        server.shutdown()
        server.server_close()


def test_a_final_state_arrives_signed_and_verifies(
    tmp_path: Path, receiver: tuple[str, queue.Queue[Arrival]]
) -> None:
    url, arrivals = receiver
    secret = new_secret()
    env = {"CONVEYOR_WEBHOOK_SECRET": secret, "CONVEYOR_HTTP_ALLOWED_HOSTS": "127.0.0.1"}
    with standalone(tmp_path, tmp_path / "conveyor.db", env=env) as server, Client(
        server.url, timeout=10
    ) as client:
        handle = client.submit("echo", {"x": 1}, callback_url=url)
        assert handle.result(timeout=10) == {"x": 1}
        headers, body = arrivals.get(timeout=10)
    document = verify(secret, headers, body)
    assert (document["task_id"], document["status"], document["result"]) == (
        handle.id, "SUCCESS", {"x": 1}
    )
    assert headers["webhook-id"] == f"{handle.id}:1:SUCCESS"
    with pytest.raises(WebhookVerificationError):
        verify(secret, headers, json.dumps({**document, "result": {"x": 2}}).encode())


def test_a_secret_in_the_wrong_format_stops_the_start(tmp_path: Path) -> None:
    env = clean_env({"CONVEYOR_WEBHOOK_SECRET": "s3cret"})
    run = subprocess.run(
        [conveyor_command(), "standalone", "--db", str(tmp_path / "c.db"),
         "--port", str(free_port())],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode != 0
    message = " ".join(run.stderr.split())
    assert "setting 'webhook_secret' must start with 'whsec_'" in message, run.stderr
    assert "new_secret()" in message
