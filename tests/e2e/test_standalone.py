"""``conveyor standalone`` as a real process: tasks flow end to end, survive SIGTERM and
SIGKILL, and the CLI talks to it.

Every server runs on a free port with a SQLite file in ``tmp_path``, settings tuned through the
environment so retries, heartbeats and recovery take a second or two, and is always killed in a
``finally``. Every wait is bounded.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.client import Client, TaskInfo
from conveyor.models import TaskStatus, check_move
from tests.support.processes import conveyor_command, free_port

pytestmark = pytest.mark.slow

FAST_ENV = {
    "CONVEYOR_WORKER__CAPACITY": "10",
    "CONVEYOR_WORKER__QUEUE_POLL_INTERVAL": "0.1",
    "CONVEYOR_WORKER__HEARTBEAT_INTERVAL": "1",
    "CONVEYOR_WORKER__HEARTBEAT_TTL": "3",
    "CONVEYOR_WORKER__GRACEFUL_SHUTDOWN_TIMEOUT": "0.3",
    "CONVEYOR_SCHEDULER__SCAN_INTERVAL": "0.2",
    "CONVEYOR_SCHEDULER__TIMEOUT_CHECK_INTERVAL": "0.5",
    "CONVEYOR_SCHEDULER__ORPHAN_SWEEP_INTERVAL": "1",
    "CONVEYOR_SCHEDULER__ORPHAN_MIN_AGE": "1",
    "CONVEYOR_SCHEDULER__TIMEOUT_GRACE": "0.5",
    "CONVEYOR_SCHEDULER__LEADER_LOCK_TTL": "3",
    "CONVEYOR_SCHEDULER__LEADER_RENEW_INTERVAL": "1",
    "CONVEYOR_TASKS__BACKOFF_BASE": "0.2",
    "CONVEYOR_TASKS__BACKOFF_CAP": "1",
    "CONVEYOR_LOG_LEVEL": "INFO",
}


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any CONVEYOR_* setting, plus the fast settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(FAST_ENV)
    env.update(extra or {})
    env["COLUMNS"] = "200"  # rich tables: keep ids on one line
    return env


class Standalone:
    """One ``conveyor standalone`` process; output goes to a file so it can never block."""

    def __init__(
        self, workdir: Path, db: Path, *, env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        self.db = db
        self.port = 0
        self.url = ""
        self.env = clean_env(env)
        self.args = args
        self.log = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 45.0, attempts: int = 3) -> Standalone:
        """Start on a free port; another port if a concurrent process took this one first."""
        for _ in range(attempts):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.log = self.workdir / f"server-{self.port}-{time.monotonic_ns()}.log"
            if self._launch(ready_timeout):
                return self
            self.kill()
        raise AssertionError(f"no free port after {attempts} attempts:\n{self.output()}")

    def _launch(self, ready_timeout: float) -> bool:
        """True once healthy; False if the port turned out to be taken."""
        command = [conveyor_command(), "standalone", "--db", str(self.db),
                   "--port", str(self.port), *self.args]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                command, cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.proc.poll() is not None:
                if "address already in use" in self.output():
                    return False
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            if self._answers():
                return True
            if time.monotonic() > deadline:
                raise AssertionError(f"server not healthy in {ready_timeout}s:\n{self.output()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        """Healthy, and it is this process that answers (its worker carries our pid)."""
        assert self.proc is not None
        try:
            if httpx.get(f"{self.url}/healthz", timeout=1).status_code != 200:
                return False
            workers = httpx.get(f"{self.url}/api/v1/workers", timeout=2).json()["workers"]
        except (httpx.TransportError, ValueError, KeyError):
            return False
        return any(w["pid"] == self.proc.pid for w in workers)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise AssertionError(
                f"server did not exit within {timeout}s:\n{self.output()}") from exc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def standalone(workdir: Path, db: Path, **options: Any) -> Iterator[Standalone]:
    server = Standalone(workdir, db, **options)
    try:
        yield server.start()
    finally:
        server.kill()


@contextmanager
def client_for(server: Standalone) -> Iterator[Client]:
    with Client(server.url, timeout=10) as client:
        yield client


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def ts(text: str | None) -> float:
    assert text is not None
    return datetime.fromisoformat(text).timestamp()


def check_log(client: Client, task: TaskInfo) -> list[dict[str, Any]]:
    """The log is complete: created, a chain of legal moves, ending in the task's status."""
    logs = client.logs(task.task_id)
    assert logs, f"{task.task_id} has no log"
    assert (logs[0]["from_status"], logs[0]["to_status"]) == (None, "PENDING"), logs[0]
    for before, row in itertools.pairwise(logs):
        assert row["from_status"] == before["to_status"], f"gap in the log: {logs}"
        check_move(TaskStatus(row["from_status"]), TaskStatus(row["to_status"]))
        assert ts(row["at"]) >= ts(before["at"])
    assert logs[-1]["to_status"] == task.status, logs
    starts = [r for r in logs if r["to_status"] == "PROCESSING"]
    assert [r["attempt"] for r in starts] == list(range(1, task.attempt + 1))
    return logs


def stored_statuses(db: Path) -> dict[str, int]:
    """Count tasks by status straight from the SQLite file of a stopped server."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT status, COUNT(*) FROM task GROUP BY status").fetchall()
    return dict(rows)


def moves(logs: list[dict[str, Any]]) -> list[str]:
    return [row["to_status"] for row in logs]


def wait_all_final(client: Client, ids: list[str], timeout: float) -> dict[str, TaskInfo]:
    final: dict[str, TaskInfo] = {}

    def done() -> bool:
        for task_id in ids:
            if task_id not in final:
                info = client.get(task_id)
                if info.is_final:
                    final[task_id] = info
        return len(final) == len(ids)

    wait_until(done, timeout, f"{len(ids) - len(final)} tasks to finish")
    return final


# -- one server for the feature tour and the CLI ---------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    workdir = tmp_path_factory.mktemp("standalone")
    with standalone(workdir, workdir / "conveyor.db") as running:
        yield running


def test_tasks_flow_end_to_end(server: Standalone) -> None:
    with client_for(server) as client:
        by_priority = {
            p: client.submit("echo", {"p": p}, priority=p) for p in ("high", "normal", "low")
        }
        numeric = client.submit("echo", {"p": 1}, priority=1)
        flaky = client.submit("fail", {"times": 2})
        doomed = client.submit("fail", {"times": 99}, max_retries=1)
        slow = client.submit("sleep", {"seconds": 5}, timeout_seconds=0.5, max_retries=0)
        long = client.submit("sleep", {"seconds": 30})
        delayed = client.submit("echo", {"late": True}, delay_seconds=2)

        # A running task is interrupted and recorded CANCELLED within about a second.
        wait_until(lambda: client.get(long.id).status == "PROCESSING", 10, "sleep to start")
        asked = time.monotonic()
        answer = client.cancel(long.id)
        assert answer.cancel_requested is True
        cancelled = client.wait(long.id, timeout=5)
        assert cancelled.status == "CANCELLED"
        assert time.monotonic() - asked < 3  # about a second; slack for a loaded machine

        for p, handle in by_priority.items():
            assert handle.info.priority == p
            assert handle.result(timeout=10) == {"p": p}
        assert numeric.info.priority == "normal"
        assert numeric.result(timeout=10) == {"p": 1}

        assert flaky.result(timeout=15) == {"succeeded_on_attempt": 3}
        flaky_info = client.get(flaky.id)
        assert (flaky_info.attempt, flaky_info.retry_count) == (3, 2)

        failed = client.wait(doomed.id, timeout=15)
        assert failed.status == "FAILED"
        assert (failed.attempt, failed.retry_count, failed.max_retries) == (2, 1, 1)
        assert "asked to fail" in (failed.error or "")

        timed_out = client.wait(slow.id, timeout=10)
        assert timed_out.status == "TIMEOUT"
        assert timed_out.attempt == 1
        assert "timed out" in (timed_out.error or "")
        assert ts(timed_out.finished_at) - ts(timed_out.started_at) < 4.5  # not the 5 s sleep

        late = client.wait(delayed.id, timeout=10)
        assert late.status == "SUCCESS"
        assert late.result == {"late": True}
        assert ts(late.run_at) - ts(late.created_at) == pytest.approx(2, abs=0.05)
        assert ts(late.started_at) >= ts(late.run_at)
        assert ts(late.started_at) - ts(late.created_at) < 10

        # Every log is complete and legal, and tells the story of its task.
        flaky_log = check_log(client, flaky_info)
        assert moves(flaky_log) == ["PENDING", "PROCESSING", "FAILED", "PENDING", "PROCESSING",
                                    "FAILED", "PENDING", "PROCESSING", "SUCCESS"]
        # The gaps honour the backoff: 0.2 s then 0.4 s, with ±20% jitter.
        fails = [ts(r["at"]) for r in flaky_log if r["to_status"] == "FAILED"]
        reruns = [ts(r["at"]) for r in flaky_log if r["to_status"] == "PROCESSING"][1:]
        assert reruns[0] - fails[0] >= 0.2 * 0.8 - 0.01
        assert reruns[1] - fails[1] >= 0.4 * 0.8 - 0.01
        assert moves(check_log(client, failed)) == [
            "PENDING", "PROCESSING", "FAILED", "PENDING", "PROCESSING", "FAILED"]
        assert moves(check_log(client, timed_out)) == ["PENDING", "PROCESSING", "TIMEOUT"]
        assert moves(check_log(client, cancelled)) == ["PENDING", "PROCESSING", "CANCELLED"]
        assert moves(check_log(client, late)) == ["PENDING", "PROCESSING", "SUCCESS"]
        for handle in by_priority.values():
            check_log(client, client.get(handle.id))


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [conveyor_command(), *args], capture_output=True, text=True, timeout=timeout,
        env=clean_env(), check=False,
    )


def test_cli_against_a_running_server(server: Standalone) -> None:
    url = ("--url", server.url)
    submitted = run_cli("submit", "echo", "--payload", '{"x":1}', "--wait", *url)
    assert submitted.returncode == 0, submitted.stderr
    assert "SUCCESS" in submitted.stdout
    assert '"x": 1' in submitted.stdout
    task = json.loads(submitted.stdout)
    assert task["status"] == "SUCCESS"
    assert task["result"] == {"x": 1}
    task_id = task["task_id"]

    got = run_cli("get", task_id, *url)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["task_id"] == task_id

    listed = run_cli("list", "--status", "SUCCESS", "--type", "echo", *url)
    assert listed.returncode == 0, listed.stderr
    assert task_id in listed.stdout

    logs = run_cli("logs", task_id, *url)
    assert logs.returncode == 0, logs.stderr
    for status in ("PENDING", "PROCESSING", "SUCCESS"):
        assert status in logs.stdout

    unknown = run_cli("submit", "nosuchtype", *url)
    assert unknown.returncode != 0
    assert "unknown task_type 'nosuchtype'" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    missing = run_cli("get", "nosuchid", *url)
    assert missing.returncode != 0
    assert "nosuchid" in missing.stderr

    bad_payload = run_cli("submit", "echo", "--payload", "{not json", *url)
    assert bad_payload.returncode != 0
    assert "--payload" in bad_payload.stderr

    unreachable = run_cli("get", task_id, "--url", f"http://127.0.0.1:{free_port()}")
    assert unreachable.returncode != 0
    assert "cannot reach" in unreachable.stderr


# -- stopping and restarting -----------------------------------------------------------------


def test_sigterm_and_restart_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    with standalone(tmp_path, db) as first, client_for(first) as client:
        sleeps = client.submit_many(
            [{"task_type": "sleep", "payload": {"seconds": 2}} for _ in range(20)])
        queued = client.submit_many(
            [{"task_type": "echo", "payload": {"i": i}, "priority": "low"} for i in range(5)])
        delayed = client.submit_many(
            [{"task_type": "echo", "payload": {"d": i}, "delay_seconds": 1.5} for i in range(3)])
        wait_until(
            lambda: sum(1 for _ in client.list(status="PROCESSING")) == 10, 10,
            "a full worker (10 running)",
        )
        assert first.stop(signal.SIGTERM) == 0, first.output()
        assert "stopped" in first.output()
    # The graceful stop wrote every outcome: nothing is left PROCESSING in the store (a sleep
    # may have finished within the grace period on a slow machine).
    after_stop = stored_statuses(db)
    assert set(after_stop) <= {"PENDING", "SUCCESS"}, after_stop
    assert sum(after_stop.values()) == len(sleeps) + len(queued) + len(delayed)

    ids = [t.task_id for t in (*sleeps, *queued, *delayed)]
    with standalone(tmp_path, db) as second, client_for(second) as client:
        final = wait_all_final(client, ids, timeout=30)
        assert {info.status for info in final.values()} == {"SUCCESS"}, {
            i.task_id: i.status for i in final.values()}
        listed = {t.task_id for t in client.list()}
        assert listed == set(ids)  # nothing lost, nothing made up

        interrupted = 0
        for info in final.values():
            logs = check_log(client, info)
            assert info.retry_count == 0  # a shutdown never spends a retry
            if "TIMEOUT" in moves(logs):
                interrupted += 1
                assert moves(logs) == [
                    "PENDING", "PROCESSING", "TIMEOUT", "PENDING", "PROCESSING", "SUCCESS"]
                assert "shut down" in logs[2]["message"], logs
                assert "attempt lost" in logs[3]["message"], logs
            else:
                assert moves(logs) == ["PENDING", "PROCESSING", "SUCCESS"], logs
        # The running sleeps were cut short (grace 0.3 s < 2 s) and ran again: all ten of them
        # unless the machine was so slow that some finished before the signal landed.
        assert 1 <= interrupted <= 10
        assert interrupted + after_stop.get("SUCCESS", 0) >= 10
        assert second.stop(signal.SIGTERM) == 0


def test_sigkill_running_tasks_are_recovered(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    with standalone(tmp_path, db) as first, client_for(first) as client:
        handles = [client.submit("sleep", {"seconds": 1.5}) for _ in range(4)]
        wait_until(
            lambda: all(client.get(h.id).status == "PROCESSING" for h in handles), 10,
            "the sleeps to start",
        )
        first.stop(signal.SIGKILL)

    ids = [h.id for h in handles]
    with standalone(tmp_path, db) as second, client_for(second) as client:
        restarted = time.monotonic()
        final = wait_all_final(client, ids, timeout=30)
        # Heartbeat TTL 3 s: found within a few seconds, then 1.5 s of sleep (slack for load).
        assert time.monotonic() - restarted < 20
        for info in final.values():
            assert info.status == "SUCCESS", info
            assert info.retry_count == 0
            assert info.attempt == 2
            logs = check_log(client, info)
            assert moves(logs) == [
                "PENDING", "PROCESSING", "TIMEOUT", "PENDING", "PROCESSING", "SUCCESS"]
            assert "stopped answering" in logs[2]["message"], logs
            assert "attempt lost" in logs[3]["message"], logs
        assert second.stop(signal.SIGTERM) == 0
