"""A stable worker identity (``worker.id``), unique among live workers, and the leader lease
under ``scheduler.leader_lock_key``: real ``conveyor worker`` / ``scheduler`` processes on Redis."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.e2e.test_standalone import clean_env, wait_until
from tests.support.processes import conveyor_command

pytestmark = pytest.mark.slow

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    env = clean_env({
        "CONVEYOR_DATABASE_URL": str(tmp_path / "conveyor.db"),
        "CONVEYOR_REDIS_URL": REDIS, "CONVEYOR_REDIS_PREFIX": prefix,
    })
    subprocess.run([conveyor_command(), "migrate"], env=env, check=True, timeout=30,
                   capture_output=True)
    yield env
    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def launch(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([conveyor_command(), *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def test_a_second_live_worker_with_the_same_id_is_refused(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "CONVEYOR_WORKER__ID": "billing-1"}
    first_log = tmp_path / "first.log"
    first = launch(["worker"], env, first_log)
    try:
        wait_until(lambda: "worker billing-1 ready" in first_log.read_text(), 20, "ready")
        second = subprocess.run([conveyor_command(), "worker"], env=env, capture_output=True,
                                text=True, timeout=30, check=False)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "worker id 'billing-1' is already used by a live worker" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert first.poll() is None
        # The refused one left the first one's registration and queues alone.
        client = redis.Redis.from_url(REDIS)
        try:
            assert client.exists(f"{env['CONVEYOR_REDIS_PREFIX']}worker:billing-1")
        finally:
            client.close()
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(20)
    # Stopped (deregistered), the id is free again: the same worker comes back as itself.
    again_log = tmp_path / "again.log"
    again = launch(["worker"], env, again_log)
    try:
        wait_until(lambda: "worker billing-1 ready" in again_log.read_text(), 20, "ready again")
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(20) == 0


def test_worker_name_is_the_id_when_no_id_is_given(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "named.log"
    worker = launch(["worker"], {**env, "CONVEYOR_WORKER__NAME": "resizer"}, log)
    try:
        wait_until(lambda: "worker resizer ready" in log.read_text(), 20, "ready")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)


def test_leader_lease_lives_under_the_configured_key(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "scheduler.log"
    env = {**env, "CONVEYOR_SCHEDULER__LEADER_LOCK_KEY": "billing:leader"}
    scheduler = launch(["scheduler"], env, log)
    client = redis.Redis.from_url(REDIS)
    try:
        wait_until(lambda: "became leader" in log.read_text(), 20, "the lease")
        prefix = env["CONVEYOR_REDIS_PREFIX"]
        assert client.exists(f"{prefix}billing:leader")
        assert not client.exists(f"{prefix}scheduler:leader")
    finally:
        client.close()
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(20)
