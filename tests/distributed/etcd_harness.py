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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import quote, unquote

import pytest

from tests.distributed.harness import Cluster, cluster

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


def get_prefix(prefix: str, endpoints: str | None = None) -> dict[str, str]:
    """Keys (without ``prefix``) and values under ``prefix``."""
    lines = etcdctl("get", "--prefix", prefix, endpoints=endpoints).splitlines()
    return {k[len(prefix):]: v for k, v in zip(lines[::2], lines[1::2], strict=True)}


@dataclass
class EtcdCluster(Cluster):
    """``redis_url`` holds the etcd URL here (the field the base class names it by)."""

    @property
    def endpoints(self) -> str:
        return self.redis_url.removeprefix("etcd://")

    def get(self, prefix: str) -> dict[str, str]:
        return get_prefix(f"{self.prefix}{prefix}", self.endpoints)

    def env(self, **extra: str) -> dict[str, str]:
        env = super().env(**extra)
        env.pop("CONVEYOR_REDIS_URL", None)
        env.setdefault("CONVEYOR_COORDINATION_URL", self.redis_url)  # or a proxy, given extra
        return env

    def leader(self) -> tuple[str, int] | None:
        value = self.get("scheduler:leader").get("")
        if not value:
            return None
        body = json.loads(value)
        return (body["holder"], int(body["epoch"])) if body["expires"] > time.time() else None

    def wait_workers(self, count: int, timeout: float = 60) -> list[str]:
        from tests.distributed.harness import wait_until

        def registered() -> list[str]:
            self.check_alive()
            ids = [unquote(k) for k in self.get("wi/")]
            return ids if len(ids) >= count else []

        return wait_until(registered, timeout, 0.2, f"{count} workers to register")

    def queued_with(self, worker_id: str) -> list[str]:
        """Task ids waiting in a worker's queue."""
        found = self.get(f"w/{quote(worker_id, safe='')}/q/")
        return [v.split("|")[0] for v in found.values()]

    def shutdown(self) -> None:
        for proc in self.procs:
            proc.signal(9)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(5)
        with contextlib.suppress(AssertionError, subprocess.SubprocessError):
            etcdctl("del", "--prefix", self.prefix, endpoints=self.endpoints)


@contextlib.contextmanager
def etcd_cluster(tmp_path: Path, backend: str = "mariadb", **env: str) -> Iterator[EtcdCluster]:
    """As ``harness.cluster``, coordinated by etcd; a missing etcd fails under CI."""
    try:
        etcdctl("endpoint", "health")
    except (AssertionError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"etcd at {ETCD_URL} is not reachable: {exc}")
        pytest.skip(f"etcd at {ETCD_URL} is not reachable: {exc}")
    with etcd_cluster_on(tmp_path, ETCD_URL, backend, **env) as c:
        yield c


# -- a private 3-member etcd cluster on loopback ports -----------------------------------------


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def start(self, initial_cluster: str, token: str, extra: Sequence[str] = ()) -> None:
        binary = shutil.which("etcd")
        assert binary, "etcd is not installed (scripts/services.sh installs etcd-server)"
        peer, client = f"http://127.0.0.1:{self.peer_port}", f"http://{self.endpoint}"
        with (self.workdir / f"{self.name}.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [binary, "--name", self.name, "--data-dir", str(self.workdir / self.name),
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", initial_cluster, "--initial-cluster-state", "new",
                 "--initial-cluster-token", token, *extra],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class EtcdMembers:
    """Etcd members started by the test, killed with it."""

    members: list[EtcdMember]
    generation: int = 0  # a new member set after ``wipe``
    extra: Sequence[str] = ()  # more etcd flags for every member

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}=http://127.0.0.1:{m.peer_port}" for m in self.members)

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(m.endpoint for m in self.members)

    def start(self, member: EtcdMember | None = None) -> None:
        for m in [member] if member else self.members:
            m.start(self.initial_cluster, f"{m.workdir.name}-{self.generation}", self.extra)
        self.wait_healthy()

    def wipe(self) -> None:
        """Every member killed and started again with no data: etcd lost everything."""
        self.stop()
        for m in self.members:
            shutil.rmtree(m.workdir / m.name, ignore_errors=True)
        self.generation += 1
        self.start()

    def wait_healthy(self, timeout: float = 30) -> None:
        from tests.distributed.harness import wait_until

        def healthy() -> bool:
            try:
                etcdctl("endpoint", "health", endpoints=",".join(
                    m.endpoint for m in self.members if m.proc and m.proc.poll() is None))
            except AssertionError:
                return False
            return True

        wait_until(healthy, timeout, 0.2, "the etcd members to be healthy")

    def leader(self) -> EtcdMember:
        """The member that leads the Raft group now."""
        live = [m for m in self.members if m.proc and m.proc.poll() is None]
        status = json.loads(etcdctl("endpoint", "status", "-w", "json",
                                    endpoints=",".join(m.endpoint for m in live)))
        for m, entry in zip(live, status, strict=True):
            if entry["Status"]["header"]["member_id"] == entry["Status"]["leader"]:
                return m
        raise AssertionError("no etcd leader")

    def stop(self) -> None:
        for m in self.members:
            m.kill()


@contextlib.contextmanager
def etcd_members(
    workdir: Path, size: int = 3, extra: Sequence[str] = (), ports: Sequence[int] = ()
) -> Iterator[EtcdMembers]:
    """``size`` members on loopback: client and peer ports from ``ports`` (two per member)
    when given, else free ones."""
    from tests.support.processes import free_port

    chosen = list(ports) or [free_port() for _ in range(2 * size)]
    assert len(chosen) >= 2 * size, "two ports per etcd member"
    if shutil.which("etcd") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("etcd is not installed")
        pytest.skip("etcd is not installed")
    group = EtcdMembers([EtcdMember(f"m{i}", chosen[2 * i], chosen[2 * i + 1], workdir)
                         for i in range(size)], extra=extra)
    try:
        group.start()
        yield group
    finally:
        group.stop()


def etcd_cluster_on(
    tmp_path: Path, url: str, backend: str = "mariadb", **env: str
) -> contextlib.AbstractContextManager[EtcdCluster]:
    """As ``etcd_cluster``, on the etcd members behind ``url``."""
    return cast(contextlib.AbstractContextManager[EtcdCluster],
                cluster(tmp_path, backend, url, kind=EtcdCluster, **env))
