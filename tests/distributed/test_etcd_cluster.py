"""Distributed mode on etcd (issue 16): the same processes as ``test_cluster`` with
``CONVEYOR_COORDINATION_URL=etcd://...``: exactly one SUCCESS per task, leader SIGKILL
failover, worker SIGKILL recovery and the cancel of a running task. Figures are printed
(``-s``)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.distributed.etcd_harness import (
    EtcdCluster,
    etcd_cluster,
    etcd_cluster_on,
    etcd_members,
)
from tests.distributed.harness import wait_until
from tests.distributed.test_cluster import (
    PRIORITIES,
    assert_one_success_each,
    flowing,
    start_fleet,
    submit_in_batches,
)

pytestmark = pytest.mark.slow


@pytest.mark.timeout(240)
def test_every_task_succeeds_once_on_etcd(tmp_path: Path) -> None:
    total = 2000
    with etcd_cluster(tmp_path) as c:
        start_fleet(c, schedulers=3, workers=3, capacity=50)
        rng = random.Random(7)
        tasks = [{"task_type": "echo", "payload": {"n": n}, "priority": rng.choice(PRIORITIES)}
                 for n in range(total)]
        began = time.monotonic()
        with c.client() as client:
            ids = submit_in_batches(client, tasks)
        assert len(set(ids)) == total
        c.wait_status("SUCCESS", total, 180)
        took = time.monotonic() - began
        print(f"\n[etcd] {total} tasks submitted and finished in {took:.1f}s "
              f"({total / took:.0f}/s) by 3 workers")
        assert_one_success_each(c, total)
        starts = c.db.scalar("SELECT COUNT(*) FROM task_logs WHERE to_status = 'PROCESSING'")
        assert starts == total, "a task was started more than once"
        c.check_alive()


def test_leader_kill_fails_over_on_etcd(tmp_path: Path) -> None:
    with etcd_cluster(tmp_path) as c:
        start_fleet(c, schedulers=3, workers=2)
        holder, epoch = c.wait_leader()
        with c.client() as client:
            client.submit("echo", {}).result(10)
        victim = c.by_id(holder)
        killed_at = time.time()
        c.kill(victim)
        with flowing(c.url or "", every=0.05, batch=2) as ids:
            new = wait_until(lambda: (lead := c.leader()) and lead[1] > epoch and lead,
                             10, 0.1, "a new leader")
            wait_until(lambda: c.db.scalar(
                "SELECT COUNT(*) FROM task WHERE created_at > :t AND started_at IS NOT NULL",
                t=killed_at), 20, 0.05, "a task submitted after the kill to start")
            time.sleep(0.5)
        c.wait_status("SUCCESS", len(ids) + 1, 30)
        rows = c.db.rows("SELECT created_at, started_at FROM task WHERE created_at > :t",
                         t=killed_at)
        gap = min(r.started_at for r in rows) - killed_at
        print(f"\n[etcd] leader {holder} (epoch {epoch}) killed; new leader epoch {new[1]}; "
              f"first dispatch after {gap:.2f}s")
        assert new[0] != holder and new[1] > epoch
        assert gap < 5
        c.check_alive(victim)


def pick_victim(c: EtcdCluster) -> tuple[str, list[str], list[str]]:
    """A worker with both running tasks and tasks waiting in its etcd queue."""
    for row in c.db.rows("SELECT DISTINCT worker_id FROM task WHERE status = 'PROCESSING'"):
        queued = c.queued_with(row.worker_id)
        running = [x.id for x in c.db.rows(
            "SELECT id FROM task WHERE status = 'PROCESSING' AND worker_id = :w",
            w=row.worker_id)]
        if queued and running:
            return row.worker_id, running, queued
    return "", [], []


def test_worker_kill_loses_no_task_on_etcd(tmp_path: Path) -> None:
    with etcd_cluster(tmp_path) as c:
        start_fleet(c, schedulers=2, workers=3, capacity=2)
        with c.client() as client:
            ids = submit_in_batches(
                client, [{"task_type": "sleep", "payload": {"seconds": 2}}] * 12
            )
        worker_id, running, queued = wait_until(
            lambda: (v := pick_victim(c))[0] and v, 10, 0.05, "a worker with queued work")
        victim = c.by_id(worker_id)
        killed_at = time.time()
        c.kill(victim)
        c.wait_status("SUCCESS", len(ids), 60)
        held = running + queued
        mine = [r for r in c.db.rows("SELECT id, status, worker_id, started_at FROM task")
                if r.id in held]
        assert all(r.status == "SUCCESS" and r.worker_id != worker_id for r in mine), mine
        recovered = max(r.started_at for r in mine) - killed_at
        print(f"\n[etcd] killed {worker_id} holding {len(running)} running + {len(queued)} "
              f"queued; all restarted elsewhere within {recovered:.2f}s")
        assert recovered < 15
        c.check_alive(victim)


def test_cancel_running_task_on_etcd(tmp_path: Path) -> None:
    with etcd_cluster(tmp_path) as c:
        start_fleet(c, schedulers=1, workers=1)
        with c.client() as client:
            handle = client.submit("sleep", {"seconds": 30})
            wait_until(lambda: client.get(handle.id).status == "PROCESSING", 10, 0.02,
                       "the sleep task to run")
            began = time.monotonic()
            client.cancel(handle.id)
            wait_until(lambda: client.get(handle.id).status == "CANCELLED", 5, 0.01,
                       "the task to be cancelled")
            elapsed = time.monotonic() - began
        print(f"\n[etcd] cancel of a running task landed in {elapsed * 1000:.0f} ms")
        assert elapsed < 1.5


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
