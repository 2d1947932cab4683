"""Redis Sentinel (issue 18): a fleet on a ``redis+sentinel://`` URL (a primary, one replica,
3 Sentinels, all started by the test) running tasks while the primary is killed with SIGKILL.
Sentinel promotes the replica; every Conveyor process must be connected to the new primary
within a few seconds of the promotion, and the SQL rows must show every task succeeding exactly
once (what the replica had not yet received is rebuilt from SQL). The gaps are printed
(``-s``)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conveyor.client import Client
from tests.distributed.harness import cluster, wait_until
from tests.distributed.sentinel_harness import SentinelCluster, sentinel_group
from tests.distributed.test_cluster import assert_one_success_each, start_fleet

pytestmark = pytest.mark.slow

#: The primary's port; the replica and the 3 Sentinels take the next four (the suite's range).
FIRST_PORT = 21330
#: How long after the promotion every process may take to be on the new primary.
FOLLOW_BOUND = 10.0


@contextmanager
def steady(url: str, every: float = 0.05, batch: int = 5) -> Iterator[tuple[list[str], list[str]]]:
    """Submit ``echo`` batches from a thread until the block ends, each batch with idempotency
    keys and sent again until answered (the API may refuse while Redis fails over); yields the
    acknowledged ids and the errors met on the way."""
    ids: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def run() -> None:
        with Client(url, timeout=10) as client:
            for n in itertools.count():
                if stop.is_set():
                    return
                tasks = [{"task_type": "echo", "payload": {"n": n},
                          "idempotency_key": f"b{n}-{i}"} for i in range(batch)]
                while not stop.is_set():
                    try:
                        ids.extend(t.task_id for t in client.submit_many(tasks))
                        break
                    except Exception as exc:  # counted, and the batch sent again
                        errors.append(f"{type(exc).__name__}: {exc}")
                        stop.wait(0.2)
                stop.wait(every)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield ids, errors
    finally:
        stop.set()
        thread.join(30)


@pytest.mark.timeout(180)
def test_fleet_follows_a_sentinel_failover(tmp_path: Path) -> None:
    with (
        sentinel_group(tmp_path, FIRST_PORT) as group,
        cluster(tmp_path, redis_url=group.url, kind=SentinelCluster) as c,
    ):
        start_fleet(c, schedulers=2, workers=2)
        fleet = list(c.procs)
        with steady(c.url or "") as (ids, errors):
            wait_until(lambda: c.count("SUCCESS") > 50, 30, 0.1, "tasks to flow")
            killed = time.time()
            group.primary.kill()
            wait_until(lambda: group.master_port() == group.replica.port, 30, 0.05,
                       "Sentinel to promote the replica")
            promoted = time.time()

            def followed() -> bool:
                names = group.clients_of(group.replica.port)
                return all(any(f"-{p.pid}-" in name for name in names) for p in fleet)

            wait_until(followed, FOLLOW_BOUND, 0.1, "every process on the new primary")
            followed_at = time.time()
            before = c.count("SUCCESS")
            wait_until(lambda: c.count("SUCCESS") > before + 50, 30, 0.1,
                       "tasks to flow on the new primary")
        c.wait_status("SUCCESS", len(ids), 60)
        assert_one_success_each(c, len(ids))
        c.check_alive()
        first_start = c.db.scalar(
            "SELECT MIN(started_at) FROM task WHERE created_at > :t", t=killed)
        starts = [float(r[0]) for r in c.db.rows(
            "SELECT started_at FROM task WHERE started_at BETWEEN :a AND :b "
            "ORDER BY started_at", a=killed - 1, b=followed_at + 5)]
        gap = max((b - a for a, b in itertools.pairwise(starts)), default=0.0)
        print(f"\n[sentinel] primary SIGKILLed; replica promoted after {promoted - killed:.2f}s; "
              f"every process on it {followed_at - promoted:.2f}s later; first start of a task "
              f"created after the kill {float(first_start) - killed:.2f}s after it; longest "
              f"gap between starts {gap:.2f}s; {len(ids)} tasks, each SUCCESS once; "
              f"{len(errors)} submits refused meanwhile (sent again): {sorted(set(errors))[:3]}")
