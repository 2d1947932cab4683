"""Workflows under kill -9 (issue 14): 200 workflows of 20 nodes each, of mixed shapes, on 2
schedulers and 3 workers (MariaDB, Redis) while workers and the leader are killed with
SIGKILL and replaced. Then, from SQL alone:

- every workflow ends final (every node SUCCESS, FAILED, TIMEOUT or CANCELLED);
- no node started before each of its parents succeeded (every PROCESSING row of a child is
  no earlier than its parent's SUCCESS row), unless it asked to run on failure; then no earlier
  than the parent's final row;
- no node was released twice (at most one WAITING → PENDING row per task);
- the per-task guarantees of docs/design.md §8 (``invariants.check_all``) on every node.

Bounded: submissions over ~15 s, faults over ~30 s, 100 s for everything to end once the
faults stop; every process is killed when the block ends, whatever happened.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.distributed.harness import FAST_ENV, Cluster, cluster, wait_until
from tests.faults.invariants import as_log, as_row, check_all
from tests.faults.test_faults import background

pytestmark = pytest.mark.slow

WORKFLOWS = 200
NODES = 20
SUBMIT_SECONDS = 15.0
SETTLE_SECONDS = 100.0
FINAL = ("SUCCESS", "FAILED", "TIMEOUT", "CANCELLED")


def node(rng: random.Random, after: list[str]) -> dict[str, Any]:
    """Mostly quick echoes and short sleeps (so kills land on running nodes), a few that fail
    once (retried), a few that fail for good (their descendants are cancelled, or run)."""
    kind = rng.choices(["echo", "sleep", "flaky", "broken"], [55, 35, 7, 3])[0]
    spec: dict[str, Any] = {"after": after}
    if kind == "echo":
        spec |= {"task_type": "echo", "payload": {"n": rng.randrange(1000)}}
    elif kind == "sleep":
        spec |= {"task_type": "sleep", "payload": {"seconds": round(rng.uniform(0.05, 0.4), 2)}}
    elif kind == "flaky":
        spec |= {"task_type": "fail", "payload": {"times": 1}, "max_retries": 2}
    else:
        spec |= {"task_type": "fail", "payload": {"permanent": True}, "max_retries": 0}
    if after and rng.random() < 0.15:
        spec["on_parent_failure"] = "run"
    return spec


def shape(i: int, rng: random.Random) -> dict[str, list[str]]:
    """Node name → parents: a chain, a fan-out / fan-in, layers of 5, or a random DAG."""
    names = [f"n{k}" for k in range(NODES)]
    kind = i % 4
    if kind == 0:
        return {n: names[k - 1:k] for k, n in enumerate(names)}
    if kind == 1:
        return {names[0]: [], **{n: [names[0]] for n in names[1:-1]}, names[-1]: names[1:-1]}
    if kind == 2:
        return {n: names[(k // 5 - 1) * 5:(k // 5) * 5] if k >= 5 else []
                for k, n in enumerate(names)}
    return {n: rng.sample(names[:k], min(k, rng.randint(0, 3))) for k, n in enumerate(names)}


def plan(rng: random.Random) -> list[dict[str, Any]]:
    bodies = []
    for i in range(WORKFLOWS):
        graph = shape(i, rng)
        bodies.append({"name": f"wf{i}", "tasks": {n: node(rng, ps) for n, ps in graph.items()}})
    return bodies


def submit(api: str, bodies: list[dict[str, Any]], made: list[str]) -> None:
    """Each workflow once, spread over SUBMIT_SECONDS; the API is never killed here, so a
    refusal is a failure, not a fault to ride out."""
    began = time.monotonic()
    with httpx.Client(timeout=30) as http:
        for i, body in enumerate(bodies):
            time.sleep(max(0.0, began + SUBMIT_SECONDS * i / len(bodies) - time.monotonic()))
            answer = http.post(f"{api}/api/v1/workflows", json=body)
            assert answer.status_code == 201, answer.text
            made.append(answer.json()["workflow_id"])


def faults(c: Cluster, rng: random.Random, done: threading.Event, seen: Counter[str]) -> None:
    """Kill a worker, the leader, a worker, ... (replacing each) while submissions run."""
    for step in range(6):
        done.wait(rng.uniform(2.0, 5.0))
        if step % 2 == 0:
            victim = rng.choice([p for p in c.procs if p.name.startswith("worker") and p.alive
                                 and p not in c.killed])
            c.kill(victim)
            c.worker(capacity=20)
            seen["kill -9 worker"] += 1
        else:
            holder, epoch = c.wait_leader()
            c.kill(c.by_id(holder))
            wait_until(lambda e=epoch: (x := c.leader()) and x[1] > e, 20, 0.05,
                       "a new leader after the kill")
            c.scheduler()
            seen["kill -9 leader"] += 1


def all_final(c: Cluster, count: int) -> bool:
    c.check_alive()
    open_ = c.db.scalar(
        "SELECT COUNT(*) FROM workflow_nodes n JOIN task t ON t.id = n.task_id "
        "WHERE t.status NOT IN ('SUCCESS', 'FAILED', 'TIMEOUT', 'CANCELLED')")
    flows = c.db.scalar("SELECT COUNT(*) FROM workflows")
    return flows == count and open_ == 0


def early_starts(c: Cluster) -> list[str]:
    """Edges whose child has a PROCESSING row before the parent's SUCCESS row (policy cancel)
    or before the parent's last final row (policy run), or that ran with a parent not
    succeeded under policy cancel."""
    rows = c.db.rows(
        "SELECT d.child_id, d.parent_id, d.policy, p.status AS parent_status, "
        "(SELECT MIN(l.at) FROM task_logs l WHERE l.task_id = d.child_id "
        " AND l.to_status = 'PROCESSING') AS child_start, "
        "(SELECT MAX(l.at) FROM task_logs l WHERE l.task_id = d.parent_id "
        " AND l.to_status IN ('SUCCESS', 'FAILED', 'TIMEOUT', 'CANCELLED')) AS parent_end "
        "FROM task_deps d JOIN task p ON p.id = d.parent_id")
    bad = []
    for r in rows:
        if r.child_start is None:
            continue
        if r.parent_end is None or float(r.child_start) < float(r.parent_end):
            bad.append(f"{r.child_id} started at {r.child_start} before its parent "
                       f"{r.parent_id} ended at {r.parent_end}")
        elif r.policy == "cancel" and r.parent_status != "SUCCESS":
            bad.append(f"{r.child_id} ran although parent {r.parent_id} is {r.parent_status}")
    return bad


@pytest.mark.timeout(180)
def test_workflows_survive_kill_9_of_workers_and_the_leader(tmp_path: Path) -> None:
    rng = random.Random(14)
    bodies = plan(rng)
    made: list[str] = []
    seen: Counter[str] = Counter()
    with cluster(tmp_path, "mariadb", CONVEYOR_LOG_LEVEL="WARNING") as c:
        c.api()
        for _ in range(2):
            c.scheduler()
        for _ in range(3):
            c.worker(capacity=20)
        c.wait_leader()
        c.wait_workers(3)
        assert c.url is not None
        stop = threading.Event()
        with background(lambda: submit(str(c.url), bodies, made),
                        lambda: faults(c, rng, stop, seen)) as errors:
            pass
        assert not errors, errors
        wait_until(lambda: all_final(c, WORKFLOWS), SETTLE_SECONDS, 0.5,
                   "every workflow's nodes final")

        assert len(made) == WORKFLOWS
        assert seen == Counter({"kill -9 worker": 3, "kill -9 leader": 3})
        assert early_starts(c) == []
        released = c.db.rows(
            "SELECT task_id, COUNT(*) AS n FROM task_logs WHERE from_status = 'WAITING' "
            "AND to_status = 'PENDING' GROUP BY task_id HAVING COUNT(*) > 1")
        assert [(r.task_id, r.n) for r in released] == []
        nodes = "SELECT task_id FROM workflow_nodes"
        tasks = [as_row(r) for r in c.db.rows(
            f"SELECT id, status, attempt, max_retries FROM task WHERE id IN ({nodes})")]
        logs = [as_log(r) for r in c.db.rows(
            "SELECT id, task_id, attempt, from_status, to_status, at, message, worker_id, "
            f"epoch FROM task_logs WHERE task_id IN ({nodes})")]
        assert len(tasks) == WORKFLOWS * NODES
        found = check_all(tasks, logs, float(FAST_ENV["CONVEYOR_SCHEDULER__LEADER_LOCK_TTL"]))
        assert found.violations() == {}, found.violations()
        states = Counter(r.status for r in tasks)
        print(f"\nfaults {dict(seen)}; node states {dict(states)}; "
              f"lost attempts {found.counts['lost attempts']}")
        assert set(states) <= set(FINAL)
        by_flow: dict[str, set[str]] = defaultdict(set)
        for r in c.db.rows("SELECT n.workflow_id, t.status FROM workflow_nodes n "
                           "JOIN task t ON t.id = n.task_id"):
            by_flow[r.workflow_id].add(r.status)
        assert set(by_flow) == set(made)
