"""Distributed mode on etcd (issue 16), what only etcd has: a 3-member etcd cluster losing a
member and then its Raft leader mid-run, and a fresh member set (all data lost). The fleet tests
of ``test_cluster`` (exactly one SUCCESS, SIGKILL of the leader and of a worker, cancel) run
on etcd there, parametrised. Figures are printed (``-s``)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conveyor.coordination.etcd import connect_etcd
from conveyor.errors import BackendUnavailable, ConfigError
from conveyor.models import Priority, QueueItem
from tests.distributed.etcd_harness import (
    etcd_cluster_on,
    etcd_members,
    etcdctl,
)
from tests.distributed.harness import wait_until
from tests.distributed.test_cluster import (
    assert_one_success_each,
    flowing,
    start_fleet,
    submit_in_batches,
)
from tests.support.processes import free_port

pytestmark = pytest.mark.slow


@pytest.mark.timeout(240)
def test_three_members_lose_one_then_the_leader(tmp_path: Path) -> None:
    """A member SIGKILLed and restarted mid-run, then the Raft leader: Conveyor keeps
    dispatching, every task succeeds exactly once."""
    with etcd_members(tmp_path) as group, etcd_cluster_on(tmp_path, group.url) as c:
        start_fleet(c, schedulers=2, workers=2)
        with flowing(c.url or "", every=0.05, batch=5) as ids:
            for pick in ("follower", "leader"):
                lead = group.leader()
                victim = lead if pick == "leader" else next(
                    m for m in group.members if m is not lead)
                wait_until(lambda: c.count("SUCCESS") > 0, 30, 0.1, "tasks to flow")
                before = c.count("SUCCESS")
                victim.kill()
                wait_until(lambda b=before: c.count("SUCCESS") > b + 20, 30, 0.1,
                           f"dispatch to go on with the {pick} member down")
                group.start(victim)
                print(f"\n[etcd x3] {pick} member {victim.name} killed and restarted; "
                      f"{c.count('SUCCESS')} tasks done")
        c.wait_status("SUCCESS", len(ids), 60)
        assert_one_success_each(c, len(ids))
        c.check_alive()


@pytest.mark.timeout(150)
def test_etcd_losing_its_data_loses_nothing(tmp_path: Path) -> None:
    """A fresh member set (no data at all) mid-run, as a Redis loss: the queues are rebuilt
    from SQL by the orphan sweep, the epoch keeps rising, every task succeeds once."""
    with etcd_members(tmp_path, size=1) as group, etcd_cluster_on(tmp_path, group.url) as c:
        start_fleet(c, schedulers=2, workers=2, capacity=2)
        _, before = c.wait_leader()
        with c.client() as client:
            ids = submit_in_batches(
                client, [{"task_type": "sleep", "payload": {"seconds": 0.3}}] * 40
            )
            wait_until(lambda: c.count("PROCESSING") >= 2, 10, 0.05, "tasks running")
            lost_at = time.time()
            group.wipe()
            c.wait_status("SUCCESS", len(ids), 60)
            took = time.time() - lost_at
            c.check_alive()
            assert_one_success_each(c, len(ids))
            assert client.submit("echo", {"after": "wipe"}).result(20) == {"after": "wipe"}
        _, after = c.wait_leader()
        print(f"\n[etcd] lost its data; all {len(ids)} tasks done {took:.1f}s later; "
              f"epoch {before} -> {after}")
        assert after > before


def test_user_password_auth_and_token_expiry(tmp_path: Path) -> None:
    """``etcd://user:password@...`` logs in; the token (1 s here) expiring mid-life is
    renewed on its own; wrong or missing credentials are a clear ConfigError."""
    with etcd_members(tmp_path, size=1, extra=["--auth-token-ttl", "1"]) as group:
        where = group.members[0].endpoint
        etcdctl("user", "add", "root", "--new-user-password=s3cret", endpoints=where)
        etcdctl("auth", "enable", endpoints=where)

        async def scenario() -> None:
            coord = await connect_etcd(f"etcd://root:s3cret@{where}", "auth:")
            try:
                await coord.queues.enqueue([QueueItem("a", "echo", Priority.HIGH)])
                await asyncio.sleep(3)  # the token lapses
                assert await coord.queues.peek(Priority.HIGH, 5) == [
                    QueueItem("a", "echo", Priority.HIGH)]
            finally:
                await coord.close()
            with pytest.raises(ConfigError, match="etcd refused Conveyor"):
                await connect_etcd(f"etcd://root:wrong@{where}", "auth:")
            with pytest.raises(ConfigError, match="etcd refused Conveyor"):
                await connect_etcd(f"etcd://{where}", "auth:")

        asyncio.run(scenario())


def make_certs(folder: Path) -> None:
    """A CA and a server certificate for 127.0.0.1 (the openssl command line)."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "server.pem")


def test_etcds_url_speaks_tls(tmp_path: Path) -> None:
    """``etcds://...?ca=`` reaches an etcd that serves TLS only, and verifies it."""
    if shutil.which("openssl") is None or shutil.which("etcd") is None:
        pytest.skip("openssl or etcd is not installed")
    make_certs(tmp_path)
    client, peer = free_port(), free_port()
    server = subprocess.Popen(
        ["etcd", "--data-dir", str(tmp_path / "data"),
         "--listen-client-urls", f"https://127.0.0.1:{client}",
         "--advertise-client-urls", f"https://127.0.0.1:{client}",
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"default=http://127.0.0.1:{peer}",
         "--cert-file", str(tmp_path / "server.pem"), "--key-file", str(tmp_path / "server.key")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"etcds://127.0.0.1:{client}?ca={tmp_path / 'ca.pem'}"

    async def scenario() -> None:
        for _ in range(50):  # until the member serves
            try:
                coord = await connect_etcd(url, "tls:")
                break
            except BackendUnavailable:
                await asyncio.sleep(0.2)
        else:
            raise AssertionError("the TLS etcd never answered")
        try:
            lease = await coord.lease.acquire("tls", 5)
            assert lease is not None and await coord.lease.current() == lease
        finally:
            await coord.close()

    try:
        asyncio.run(scenario())
    finally:
        server.kill()
        server.wait(10)
