"""The fault run's shorter pass on etcd (issue 16): the same task mix, fleet and §8 checks as
``test_faults``, with Conveyor reaching a private etcd member through the TCP fault proxy
(gRPC over HTTP/2 passes it as any TCP stream). Faults: kill -9 of workers and of the leader,
a SIGSTOPped leader, latency, a blackhole and resets on the etcd link, etcd frozen (SIGSTOP)
and etcd killed and restarted on its data, the database cut, an API crashing after its
commits. Bounded (about 2 minutes); the seed is printed (``CONVEYOR_FAULTS_SEED`` replays it,
``CONVEYOR_FAULTS_TASKS`` sets the task count).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conveyor.coordination.etcd import connect_etcd
from conveyor.models import Priority, QueueItem
from tests.distributed.etcd_harness import (
    ETCD_URL,
    EtcdCluster,
    etcd_cluster_on,
    etcd_members,
    etcdctl,
)
from tests.distributed.harness import Cluster
from tests.faults.business import BusinessService
from tests.faults.proxy import ProxyHub
from tests.faults.test_faults import (
    FaultRun,
    Ledger,
    Profile,
    execute,
    link_proxies,
    pick_seed,
    play,
    start_fleet,
)
from tests.support.databases import unavailable

pytestmark = pytest.mark.slow

#: The etcd member's client and peer ports (this suite's own range).
ETCD_PORTS = (21310, 21311)


class EtcdFaultRun(FaultRun):
    """``server`` is the ``EtcdMembers`` group (one member) behind the ``etcd`` proxy."""

    def etcd_frozen(self) -> None:
        proc = self.server.members[0].proc
        assert proc is not None
        self.freeze("etcd", proc.pid)

    def etcd_restarted(self) -> None:
        """kill -9 of the member, started again on its data a moment later."""
        member = self.server.members[0]
        began = time.time()
        member.kill()
        self.faults["etcd kill -9, restarted on its data"] += 1
        self.nap(0.5, 1.5)
        self.server.start(member)
        self.marks.append(("etcd restarted", began, time.time()))


def etcd_sequence(run: FaultRun) -> None:
    assert isinstance(run, EtcdFaultRun)
    play(run, [
        run.kill_worker,
        lambda: run.kill_scheduler(leader=True),
        run.idempotent_burst,
        lambda: run.latency("etcd"),
        run.kill_worker,
        run.pause_leader,
        run.etcd_frozen,
        run.crash_creates,
        lambda: run.cut("etcd", 4),
        run.etcd_restarted,
        run.db_cut,
        lambda: run.resets("etcd"),
        lambda: run.kill_scheduler(leader=True),
        run.kill_worker,
    ])


def etcd_whereabouts(c: Cluster, task_ids: list[str]) -> str:
    """Every key of the run whose value names one of ``task_ids``."""
    assert isinstance(c, EtcdCluster)
    wanted = set(task_ids)
    found = [f"  {value} at {key}" for key, value in c.get("").items()
             if value.split("|")[0] in wanted]
    return "\n".join(found or ["  (in no etcd key)"])


@pytest.mark.timeout(180)
def test_guarantees_hold_under_faults_on_etcd(tmp_path: Path) -> None:
    seed = pick_seed()
    with (
        etcd_members(tmp_path, size=1, ports=ETCD_PORTS) as group,
        ProxyHub() as hub,
        BusinessService() as biz,
        etcd_cluster_on(tmp_path, group.url) as c,
    ):
        member = group.members[0]
        proxies = link_proxies(c, hub, biz, "etcd", "127.0.0.1", member.client_port)
        c.extra_env["CONVEYOR_COORDINATION_URL"] = f"etcd://{proxies['etcd'].address}"
        run = EtcdFaultRun(c, group, hub, proxies, biz, Profile.short(), random.Random(seed),
                           Ledger(),
                           start_fleet(c, proxies), seed=seed)
        execute(run, etcd_sequence, etcd_whereabouts)


def test_grpc_to_etcd_passes_the_proxy() -> None:
    """etcd's gRPC (HTTP/2) through the fault proxy: it passes, survives a delay, a reset (the
    call is retried on a new connection) and a healed blackhole (the held request goes on)."""
    try:
        etcdctl("endpoint", "health")
    except (AssertionError, subprocess.SubprocessError) as exc:
        unavailable(f"etcd at {ETCD_URL}", exc)
    host, _, port = ETCD_URL.removeprefix("etcd://").split(",")[0].partition(":")
    prefix = f"cvproxy{uuid.uuid4().hex[:8]}:"
    item = QueueItem("t1", "echo", Priority.HIGH)
    with ProxyHub() as hub:
        proxy = hub.add("etcd", host, int(port or 2379))

        async def scenario() -> None:
            coord = await connect_etcd(f"etcd://{proxy.address}", prefix)
            try:
                await coord.queues.enqueue([item])
                assert await coord.queues.peek(Priority.HIGH, 5) == [item]
                assert proxy.stats.bytes_up and proxy.stats.bytes_down
                await asyncio.to_thread(proxy.set, "delay", 0.3)
                assert await coord.queues.peek(Priority.HIGH, 5) == [item]
                for mode in ("reset", "blackhole"):
                    await asyncio.to_thread(proxy.set, mode)
                    call = asyncio.ensure_future(coord.queues.peek(Priority.HIGH, 5))
                    await asyncio.sleep(1.0)
                    assert not call.done(), f"answered through a proxy in {mode}"
                    await asyncio.to_thread(proxy.set, "pass")
                    assert await call == [item], mode
                assert proxy.stats.reset >= 1
                await coord.queues.remove([item])
            finally:
                await coord.close()

        asyncio.run(scenario())
