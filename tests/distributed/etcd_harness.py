"""The distributed harness on etcd: the same ``Cluster`` with ``CONVEYOR_COORDINATION_URL``
pointing at etcd, and its looks (leader, registered workers, a worker's queue) read with
``etcdctl`` instead of a Redis client."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from tests.distributed.harness import Cluster, database

ETCD_URL = os.environ.get("CONVEYOR_TEST_ETCD_URL", "etcd://127.0.0.1:2379")


def etcdctl(*args: str, endpoints: str | None = None) -> str:
    binary = shutil.which("etcdctl")
    assert binary, "etcdctl is not installed (scripts/services.sh installs etcd-client)"
    where = endpoints or ETCD_URL.removeprefix("etcd://")
    done = subprocess.run([binary, f"--endpoints={where}", "--dial-timeout=2s", *args],
                          capture_output=True, timeout=20, check=False,
                          env={**os.environ, "ETCDCTL_API": "3"})
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode()


def get_prefix(prefix: str) -> dict[str, str]:
    """Keys (without ``prefix``) and values under ``prefix``."""
    lines = etcdctl("get", "--prefix", prefix).splitlines()
    return {k[len(prefix):]: v for k, v in zip(lines[::2], lines[1::2], strict=True)}


@dataclass
class EtcdCluster(Cluster):
    def env(self, **extra: str) -> dict[str, str]:
        env = super().env(**extra)
        env.pop("CONVEYOR_REDIS_URL", None)
        env["CONVEYOR_COORDINATION_URL"] = self.redis_url
        return env

    def leader(self) -> tuple[str, int] | None:
        value = get_prefix(f"{self.prefix}scheduler:leader").get("")
        if not value:
            return None
        body = json.loads(value)
        return (body["holder"], int(body["epoch"])) if body["expires"] > time.time() else None

    def wait_workers(self, count: int, timeout: float = 60) -> list[str]:
        from tests.distributed.harness import wait_until

        def registered() -> list[str]:
            self.check_alive()
            ids = [unquote(k) for k in get_prefix(f"{self.prefix}wi/")]
            return ids if len(ids) >= count else []

        return wait_until(registered, timeout, 0.2, f"{count} workers to register")

    def queued_with(self, worker_id: str) -> list[str]:
        """Task ids waiting in a worker's queue."""
        found = get_prefix(f"{self.prefix}w/{quote(worker_id, safe='')}/q/")
        return [v.split("|")[0] for v in found.values()]

    def shutdown(self) -> None:
        for proc in self.procs:
            proc.signal(9)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(5)
        with contextlib.suppress(AssertionError, subprocess.SubprocessError):
            etcdctl("del", "--prefix", self.prefix)


@contextlib.contextmanager
def etcd_cluster(tmp_path: Path, backend: str = "mariadb", **env: str) -> Iterator[EtcdCluster]:
    """As ``harness.cluster``, coordinated by etcd; a missing etcd fails under CI."""
    try:
        etcdctl("endpoint", "health")
    except (AssertionError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"etcd at {ETCD_URL} is not reachable: {exc}")
        pytest.skip(f"etcd at {ETCD_URL} is not reachable: {exc}")
    with database(backend, tmp_path) as db:
        c = EtcdCluster(tmp_path, db, ETCD_URL, extra_env=env)
        try:
            c.migrate()
            yield c
        except BaseException:
            c.report()
            raise
        finally:
            c.shutdown()
            db.dispose()
