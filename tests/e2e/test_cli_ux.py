"""The ``conveyor`` command as a new user meets it, run as a subprocess: the version, help on
every command (grouped, with each option's environment variable and default), tables and
``--json``, ``submit --wait`` with its live line and Ctrl-C, and errors that say how to fix
them."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from conveyor import __version__
from tests.e2e.test_standalone import Standalone, clean_env, run_cli, standalone
from tests.support.processes import conveyor_command, free_port

pytestmark = pytest.mark.slow

COMMANDS = [
    ("standalone",), ("api",), ("scheduler",), ("scheduler", "status"), ("worker",),
    ("migrate",), ("submit",), ("get",), ("list",), ("cancel",), ("retry",), ("logs",),
    ("workers",), ("queues",), ("stats",), ("pause",), ("resume",), ("apikey",),
    ("apikey", "create"), ("apikey", "list"), ("apikey", "revoke"), ("config",),
    ("config", "show"), ("config", "reference"), ("types",), ("types", "put"),
    ("types", "get"), ("types", "ls"), ("types", "rm"), ("batch",), ("audit",), ("tenants",),
    ("tenants", "set"), ("tenants", "list"), ("tenants", "rm"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    workdir = tmp_path_factory.mktemp("cli-ux")
    with standalone(workdir, workdir / "conveyor.db") as running:
        yield running


def test_version() -> None:
    for flag in ("--version", "-V"):
        ran = run_cli(flag)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == f"conveyor {__version__}"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_dash_h_everywhere(command: tuple[str, ...]) -> None:
    ran = run_cli(*command, "-h")
    assert ran.returncode == 0, ran.stderr
    assert "Usage: conveyor " + " ".join(command) in ran.stdout


def test_help_groups_commands_and_names_env_and_defaults() -> None:
    top = run_cli("--help").stdout
    panels = [top.index(f"─ {name} ") for name in ("Run", "Tasks", "Operations")]
    assert panels == sorted(panels), top
    run_part, tasks_part, ops_part = (top[a:b] for a, b in zip(
        panels, [*panels[1:], len(top)], strict=True))
    for name in ("standalone", "api", "scheduler", "worker", "migrate"):
        assert f" {name} " in run_part
    for name in ("submit", "get", "list", "cancel", "retry", "logs", "batch"):
        assert f" {name} " in tasks_part
    for name in ("workers", "queues", "stats", "pause", "resume", "audit", "apikey", "tenants",
                 "config",
                 "types"):
        assert f" {name} " in ops_part
    assert "Examples" in top
    standalone_help = run_cli("standalone", "--help").stdout
    flat = " ".join(standalone_help.replace("│", " ").split())
    for expected in ("env var: CONVEYOR_DATABASE_URL", "default: conveyor.db",
                     "env var: CONVEYOR_PORT", "default: 8080",
                     "env var: CONVEYOR_WORKER__CAPACITY", "default: 10"):
        assert expected in flat, flat
    submit_help = " ".join(run_cli("submit", "--help").stdout.replace("│", " ").split())
    assert "env var: CONVEYOR_URL" in submit_help
    assert "env var: CONVEYOR_API_KEY" in submit_help


def test_tables_and_json(server: Standalone) -> None:
    url = ("--url", server.url)
    for command, key in (("workers", None), ("queues", "lengths"), ("stats", "by_status"),
                         ("scheduler", "leader")):
        args = ("scheduler", "status") if command == "scheduler" else (command,)
        as_json = run_cli(*args, "--json", *url)
        assert as_json.returncode == 0, as_json.stderr
        data = json.loads(as_json.stdout)
        assert key is None or key in data
        table = run_cli(*args, *url)
        assert table.returncode == 0, table.stderr
        assert "┃" in table.stdout or "│" in table.stdout, table.stdout
    workers = run_cli("workers", *url).stdout
    assert " ago" in workers and "/10" in workers
    status = run_cli("scheduler", "status", *url).stdout
    assert "lease renewed" in status and "s ago" in status
    assert "standby" in status and "none" in status  # one standalone: no standby
    # Piped, a long id is never cut: the full worker id is on one line.
    worker_id = json.loads(run_cli("workers", "--json", *url).stdout)[0]["worker_id"]
    assert worker_id in workers
    submitted = json.loads(run_cli("submit", "echo", "--json", *url).stdout)
    for command in (("get",), ("cancel",), ("logs",), ("retry",)):
        ran = run_cli(*command, submitted["task_id"], "--json", *url)
        assert ran.stdout.strip() == "" or json.loads(ran.stdout) is not None, ran.stderr
    migrated = run_cli("migrate", "--db", str(server.db), "--json")
    assert json.loads(migrated.stdout) == {"database_url": str(server.db), "up_to_date": True}
    listed = json.loads(run_cli("list", "--json", *url).stdout)
    assert submitted["task_id"] in {t["task_id"] for t in listed}


def test_submit_wait_prints_the_id_first_and_ctrl_c_says_how_to_follow(
    server: Standalone,
) -> None:
    done = run_cli("submit", "echo", "-p", '{"y": 2}', "--wait", "--url", server.url)
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout)
    assert task["result"] == {"y": 2}
    assert done.stderr.startswith(f"submitted {task['task_id']} (echo)")

    proc = subprocess.Popen(
        [conveyor_command(), "submit", "sleep", "-p", '{"seconds": 30}', "--wait",
         "--url", server.url],
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the id, before the task has finished
        assert first.startswith("submitted "), first
        task_id = first.split()[1]
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert f"conveyor get {task_id}" in rest
    assert "Traceback" not in rest
    run_cli("cancel", task_id, "--url", server.url)


class NotConveyor(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>nginx</html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def one_line_error(ran: subprocess.CompletedProcess[str]) -> str:
    assert ran.returncode != 0
    assert "Traceback" not in ran.stderr
    assert ran.stderr.startswith("error: "), ran.stderr
    return ran.stderr


def test_errors_say_how_to_fix_them(tmp_path: Path) -> None:
    no_scheme = one_line_error(run_cli("get", "x", "--url", "localhost:8080"))
    assert "did you mean http://localhost:8080" in no_scheme

    port = free_port()
    refused = one_line_error(run_cli("get", "x", "--url", f"http://127.0.0.1:{port}"))
    assert not refused.startswith("error: 0")
    assert f"is Conveyor running at http://127.0.0.1:{port}?" in refused
    assert "--url / CONVEYOR_URL" in refused
    # Brackets in a message are text, not markup (a traceback before).
    bracketed = one_line_error(run_cli("get", "x", "--url", f"http://127.0.0.1:{port}/[/]"))
    assert f"127.0.0.1:{port}/[/]" in bracketed
    # Not wrapped at 80 columns when stderr is not a terminal.
    assert any(len(line) > 80 for line in refused.splitlines())

    other = HTTPServer(("127.0.0.1", 0), NotConveyor)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        answer = one_line_error(
            run_cli("get", "x", "--url", f"http://127.0.0.1:{other.server_address[1]}"))
    finally:
        other.shutdown()
    assert "not" in answer and "Conveyor API" in answer and "404" in answer

    db = f"mysql://root@127.0.0.1/cv_missing_{uuid.uuid4().hex[:8]}"
    missing_db = one_line_error(run_cli("migrate", "--db", db))
    assert "does not exist" in missing_db and "CREATE DATABASE" in missing_db
    # A process gives up at once on it (no retry creates a database), with the same fix.
    began = time.monotonic()
    worker = subprocess.run(
        [conveyor_command(), "worker", "--db", db, "--redis-url", "redis://127.0.0.1:6379/0"],
        env=clean_env({"CONVEYOR_REDIS_PREFIX": f"test:{uuid.uuid4().hex[:8]}:"}),
        capture_output=True, text=True, timeout=60, check=False)
    assert worker.returncode == 2, worker.stderr
    assert "CREATE DATABASE" in worker.stderr and "Traceback" not in worker.stderr
    assert time.monotonic() - began < 20  # not the minute a blip is retried for
    pg = f"postgresql://postgres@127.0.0.1/cv_missing_{uuid.uuid4().hex[:8]}"
    missing_pg = one_line_error(run_cli("apikey", "list", "--db", pg))
    assert "does not exist" in missing_pg and "createdb cv_missing_" in missing_pg
    empty = tmp_path / "empty.db"
    unmigrated = one_line_error(run_cli("apikey", "list", "--db", str(empty)))
    assert f"run `conveyor migrate --db {empty}`" in unmigrated


class Locked(Standalone):
    """A standalone that requires keys: ready once its banner is out (the usual probe, the
    workers list, needs a key)."""

    def _answers(self) -> bool:
        return "standalone on" in self.output()


def test_missing_key_names_the_flag_env_and_command(tmp_path: Path) -> None:
    locked = Locked(tmp_path, tmp_path / "conveyor.db", env={"CONVEYOR_AUTH_REQUIRED": "true"})
    try:
        locked.start()
        ran = run_cli("list", "--url", locked.url)
    finally:
        locked.kill()
    message = one_line_error(ran)
    for expected in ("--api-key", "CONVEYOR_API_KEY", "conveyor apikey create"):
        assert expected in message, message


def test_config_show_says_where_each_value_came_from(tmp_path: Path) -> None:
    config = tmp_path / "conveyor.yaml"
    config.write_text("worker:\n  thread_pool_size: 7\ntasks:\n  timeout: 2m\n"
                      "webhook_secret: hush\n")
    env = clean_env({"CONVEYOR_REDIS_URL": "redis://:s3cret@cache:6379/0",
                     "CONVEYOR_LOG_LEVEL": "DEBUG"})
    ran = subprocess.run(
        [conveyor_command(), "config", "show", "--config", str(config), "--port", "9001",
         "--coordination-url", "etcd://root:pw@e1:2379,e2:2379", "--json"], env=env,
        capture_output=True, text=True, timeout=30, check=False)
    assert ran.returncode == 0, ran.stderr
    shown = json.loads(ran.stdout)
    assert shown["port"] == {"value": "9001", "source": "flag"}
    assert shown["worker.thread_pool_size"] == {"value": "7", "source": f"file {config}"}
    assert shown["tasks.timeout"] == {"value": "120.0", "source": f"file {config}"}
    assert shown["worker.capacity"] == {"value": "10", "source": "environment"}
    assert shown["log_level"] == {"value": "DEBUG", "source": "environment"}
    assert shown["redis_url"] == {"value": "redis://:***@cache:6379/0", "source": "environment"}
    assert shown["coordination_url"] == {"value": "etcd://root:***@e1:2379,e2:2379",
                                         "source": "flag"}
    assert shown["webhook_secret"]["value"] == "***"
    assert shown["host"] == {"value": "127.0.0.1", "source": "default"}
    assert "s3cret" not in ran.stdout and "hush" not in ran.stdout and ":pw@" not in ran.stdout
    table = subprocess.run([conveyor_command(), "config", "show", "--config", str(config)],
                           env=env, capture_output=True, text=True, timeout=30, check=False)
    assert "worker.thread_pool_size" in table.stdout and "s3cret" not in table.stdout


def test_submit_wait_shows_a_live_status_line_on_a_terminal(server: Standalone) -> None:
    """On a terminal (a pty here) the waiting line updates in place with status and attempt."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [conveyor_command(), "submit", "sleep", "-p", '{"seconds": 1.5}', "--wait",
         "--url", server.url],
        env={**clean_env(), "TERM": "xterm"}, stdin=child, stdout=child, stderr=child,
    )
    os.close(child)
    seen = b""
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            if select.select([main], [], [], 0.1)[0]:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
    finally:
        proc.kill()
        proc.wait(5)
        os.close(main)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))  # colours
    assert "submitted " in text
    assert "PROCESSING (attempt 1" in text, text
    assert "SUCCESS" in text
