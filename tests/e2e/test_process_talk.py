"""What a process says, read from its output as the person who started it reads it: the start
banners (standalone, a worker, a leader and a standby scheduler), one INFO line per finished
attempt carrying its bound context, and the two-step Ctrl-C."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_standalone import Standalone, clean_env, client_for, standalone, wait_until
from tests.support.processes import conveyor_command

pytestmark = pytest.mark.slow


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_banner_and_one_json_line_per_finished_task(tmp_path: Path) -> None:
    env = {"CONVEYOR_LOG_FORMAT": "json"}
    with standalone(tmp_path, tmp_path / "conveyor.db", env=env) as server, \
            client_for(server) as client:
        handle = client.submit("echo", {"x": 1})
        assert handle.result(timeout=10) == {"x": 1}
        wait_until(lambda: handle.id in server.output(), 5, "the finished line")
        assert server.stop(signal.SIGTERM) == 0
    lines = json_lines(server.output())
    events = [line["event"] for line in lines]
    assert any(e.startswith("Conveyor ") and f"standalone on {server.url}" in e for e in events)
    ready = [e for e in events if e.startswith("worker ") and " ready: capacity 10" in e]
    assert len(ready) == 1, events
    assert any(e.startswith("scheduler ") and "is the leader (epoch " in e for e in events)
    finished = [line for line in lines if line.get("task_id") == handle.id]
    assert len(finished) == 1, finished
    line = finished[0]
    assert line["level"] == "info"
    assert (line["task_type"], line["attempt"]) == ("echo", 1)
    assert line["worker_id"].startswith("worker-")
    assert line["event"].startswith(f"task echo {handle.id} attempt 1: SUCCESS in ")


def test_log_level_warning_silences_finished_tasks(tmp_path: Path) -> None:
    with standalone(tmp_path, tmp_path / "conveyor.db", args=("--log-level", "WARNING")) \
            as server, client_for(server) as client:
        handle = client.submit("echo", {})
        handle.result(timeout=10)
        assert server.stop(signal.SIGTERM) == 0
    assert handle.id not in server.output()


def test_second_ctrl_c_hands_running_tasks_back_at_once(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    env = {"CONVEYOR_WORKER__GRACEFUL_SHUTDOWN_TIMEOUT": "60"}
    server = Standalone(tmp_path, db, env=env).start()
    try:
        with client_for(server) as client:
            handle = client.submit("sleep", {"seconds": 60})
            wait_until(lambda: client.get(handle.id).status == "PROCESSING", 10, "the sleep")
        assert server.proc is not None
        server.proc.send_signal(signal.SIGINT)
        wait_until(lambda: "press Ctrl-C again" in server.output(), 10, "the stopping line")
        assert ("stopping: waiting up to 60 s for 1 running tasks; press Ctrl-C again to stop "
                "now") in server.output()
        time.sleep(0.5)
        assert server.proc.poll() is None  # still draining: the grace period is 60 s
        second = time.monotonic()
        assert server.stop(signal.SIGINT, timeout=15) == 0, server.output()
        assert time.monotonic() - second < 10
    finally:
        server.kill()
    # Handed back, recorded, not lost: PENDING again, the interrupted attempt in its log.
    with closing(sqlite3.connect(db)) as conn:
        status = conn.execute("SELECT status FROM task WHERE id = ?", (handle.id,)).fetchone()
        logged = [row[0] for row in conn.execute(
            "SELECT message FROM task_logs WHERE task_id = ?", (handle.id,))]
    assert status == ("PENDING",)
    assert any("shut down" in message for message in logged), logged


def test_standby_scheduler_names_the_leader(tmp_path: Path) -> None:
    env = clean_env({
        "CONVEYOR_DATABASE_URL": str(tmp_path / "conveyor.db"),
        "CONVEYOR_REDIS_URL": "redis://127.0.0.1:6379/0",
        "CONVEYOR_REDIS_PREFIX": f"test:{uuid.uuid4().hex[:8]}:",
    })
    subprocess.run([conveyor_command(), "migrate"], env=env, check=True, timeout=30,
                   capture_output=True)
    logs = [tmp_path / "leader.log", tmp_path / "standby.log"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for log in logs:
            with log.open("wb") as out:
                procs.append(subprocess.Popen([conveyor_command(), "scheduler"], env=env,
                                              stdout=out, stderr=subprocess.STDOUT))
            wait_until(lambda log=log: "leader" in log.read_text(), 20,  # type: ignore[misc]
                       f"the banner in {log.name}")
        leader, standby = (log.read_text() for log in logs)
        assert "became leader with epoch 1" in leader, leader
        holder = leader.split("scheduler ", 2)[-1].split(" ready")[0].split()[-1]
        assert holder.startswith("scheduler-"), leader
        assert f"is standby; the leader is {holder}" in standby, standby
        assert "became leader" not in standby
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(20)
