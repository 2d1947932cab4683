"""Issue 18: a fleet across hosts loses the leader's host, then a worker host, and gets them back.

3 schedulers on 3 hosts, 6 workers on 3 more, the API, Redis and the database on three others;
5,000 mixed tasks. While the load runs, the host of the scheduler holding the lease is cut off
(its cable pulled at the switch): a scheduler on another host takes the lease and the cut one
stands down on its own (its /metrics, read through a relay into its namespace, says so while it
is still cut off) and writes nothing under its epoch past its trust window. Then the worker host
with the most tasks in hand is cut: the recoverer takes its tasks back. Both links come back;
every task ends final, none twice, and the §8 invariants hold on the rows
(tests/faults/invariants.py).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.client import Client
from conveyor.errors import ConveyorError
from tests.distributed.harness import FAST_ENV, wait_until
from tests.faults.invariants import as_log, as_row, check_all
from tests.hosts.fleet import HostsCluster, fleet
from tests.hosts.netns import Host

TASKS = 5000
BATCH = 100
SUBMIT_SECONDS = 40.0
LEASE_TTL = float(FAST_ENV["CONVEYOR_SCHEDULER__LEADER_LOCK_TTL"])
METRICS_PORT = 9090
SCHEDULERS = ["s1", "s2", "s3"]
WORKERS = ["w1", "w2", "w3"]
MIX = [("echo", 55), ("sleep", 30), ("fail", 15)]
FINAL = ("SUCCESS", "FAILED", "TIMEOUT", "CANCELLED")


def task(n: int, rng: random.Random) -> dict[str, Any]:
    kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
    payload: dict[str, Any] = {"n": n}
    if kind == "sleep":
        payload = {"seconds": round(rng.uniform(0.2, 1.0), 2)}
    elif kind == "fail":
        payload = {"times": 1}
    return {"task_type": kind, "payload": payload, "idempotency_key": f"t{n}",
            "max_retries": 2}


def submit(url: str, plan: list[dict[str, Any]], acked: set[str], stop: threading.Event) -> None:
    """Batches spread over SUBMIT_SECONDS; an unanswered batch is sent again (the idempotency
    keys make that safe)."""
    began = time.monotonic()
    batches = [plan[i:i + BATCH] for i in range(0, len(plan), BATCH)]
    with Client(url, timeout=15) as client:
        for i, batch in enumerate(batches):
            stop.wait(max(0.0, began + SUBMIT_SECONDS * i / len(batches) - time.monotonic()))
            while not stop.is_set():
                try:
                    acked.update(info.task_id for info in client.submit_many(batch))
                    break
                except (httpx.HTTPError, ConveyorError):
                    stop.wait(0.5)


def leads(metrics_url: str) -> bool:
    """What a scheduler's own /metrics says: does it act as leader (a trusted lease)? Read
    through a relay into its namespace, which a cut cable does not stop."""
    try:
        text = httpx.get(f"{metrics_url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return True  # unknown: not yet seen standing down
    return "conveyor_scheduler_is_leader 1.0" in text


def first_times(conditions: dict[str, Callable[[], bool]], timeout: float) -> dict[str, float]:
    """When each condition was first seen true (wall clock), polling them together."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(conditions):
        for name, holds in conditions.items():
            if name not in seen and holds():
                seen[name] = time.time()
        missing = set(conditions) - set(seen)
        assert time.monotonic() < deadline or not missing, f"timed out waiting for {missing}"
        time.sleep(0.02)
    return seen


def finals(c: HostsCluster) -> int:
    marks = ", ".join(f"'{s}'" for s in FINAL)
    return int(c.db.scalar(f"SELECT COUNT(*) FROM task WHERE status IN ({marks})"))


def held_by(c: HostsCluster, host: Host) -> set[str]:
    """Tasks PROCESSING on the workers of ``host``."""
    rows = c.db.rows("SELECT id, worker_id FROM task WHERE status = 'PROCESSING'")
    return {r.id for r in rows if r.worker_id and c.host_of(c.by_id(r.worker_id)) == host}


def busiest_worker_host(c: HostsCluster) -> Host:
    rows = c.db.rows("SELECT worker_id, COUNT(*) AS n FROM task WHERE status = 'PROCESSING' "
                     "AND worker_id IS NOT NULL GROUP BY worker_id")
    load: Counter[str] = Counter()
    for r in rows:
        load[c.host_of(c.by_id(r.worker_id)).name] += int(r.n)
    name = load.most_common(1)[0][0] if load else WORKERS[0]
    return c.network[name]


@pytest.mark.timeout(240)
def test_leader_and_worker_hosts_cut_off_and_back(tmp_path: Path) -> None:
    rng = random.Random(18)
    plan = [task(n, rng) for n in range(TASKS)]
    with fleet(tmp_path, ["api", *SCHEDULERS, *WORKERS]) as c:
        net = c.network
        c.api_on(net["api"], wait=False)
        probes = {}  # scheduler host -> its metrics port, reached through a relay into it
        for name in SCHEDULERS:
            c.scheduler_on(net[name], CONVEYOR_METRICS_PORT=str(METRICS_PORT),
                           CONVEYOR_HOST=net[name].address)
            probes[name] = c.expose(net[name], METRICS_PORT)
        for name in WORKERS:
            for _ in range(2):
                c.worker_on(net[name], 10)
        c.wait_api()
        c.wait_workers(6)
        c.wait_leader()
        acked: set[str] = set()
        stop = threading.Event()
        feeder = threading.Thread(target=submit, args=(c.url, plan, acked, stop), daemon=True)
        feeder.start()
        try:
            wait_until(lambda: finals(c) >= 500, 60, 0.2, "500 final tasks")

            # The leader's host goes dark while it holds the lease.
            holder, epoch = c.wait_leader()
            leader_host = c.host_of(c.by_id(holder))
            cut_at = net.cut(leader_host)
            seen = first_times({
                "new leader": lambda: (x := c.leader()) is not None and x[0] != holder,
                "stood down": lambda: not leads(probes[leader_host.name]),
            }, 30)
            failover, stood_down = seen["new leader"] - cut_at, seen["stood down"] - cut_at
            new = c.wait_leader()
            new_host = c.host_of(c.by_id(new[0]))
            assert new_host != leader_host
            done = finals(c)
            wait_until(lambda: finals(c) > done + 200, 60, 0.2, "progress under the new leader")

            # Then the worker host with the most tasks in hand.
            worker_host = busiest_worker_host(c)
            held = held_by(c, worker_host)
            wcut_at = net.cut(worker_host)
            wait_until(lambda: not held & held_by(c, worker_host), 60, 0.2,
                       "the cut workers' tasks to be taken back")
            recovery = time.time() - wcut_at
            net.mend(leader_host)
            net.mend(worker_host)
            feeder.join(SUBMIT_SECONDS + 60)
            assert not feeder.is_alive(), "the submitter did not finish"
        finally:
            stop.set()
        assert len(acked) == TASKS
        settle_from = time.time()
        wait_until(lambda: finals(c) >= TASKS, 120, 0.5, "every task final")
        settle = time.time() - settle_from

        last_old = c.db.scalar("SELECT MAX(at) FROM task_logs WHERE epoch = :e", e=epoch)
        rows = [as_row(r) for r in c.db.rows("SELECT id, status, attempt, max_retries FROM task")]
        logs = [as_log(r) for r in c.db.rows(
            "SELECT id, task_id, attempt, from_status, to_status, at, message, worker_id, "
            "epoch FROM task_logs ORDER BY id")]
        found = check_all(rows, logs, LEASE_TTL)
        print(f"\nleader {holder} on {leader_host.name} ({leader_host.address}) cut; it stood "
              f"down within {stood_down:.2f}s (its own /metrics) and {new[0]} on "
              f"{new_host.name} took over in {failover:.2f}s (lease TTL {LEASE_TTL:g}s)")
        print(f"worker host {worker_host.name}: {len(held)} tasks in hand taken back in "
              f"{recovery:.2f}s; all {TASKS} final {settle:.1f}s after the links came back")
        print("counts:", dict(found.counts))
        assert {r.id for r in rows} == acked
        violations = found.violations()
        assert not violations, {k: v[:5] for k, v in violations.items()}
        assert last_old is None or float(last_old) <= cut_at + LEASE_TTL, (
            f"epoch {epoch} wrote at {last_old}, {float(last_old) - cut_at:.2f}s after its cut")
        assert held, "the cut worker host held no task: the cut proved nothing"
        c.check_alive()
