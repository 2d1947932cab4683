"""The fault-injection run of issue 6: thousands of mixed tasks on 2 schedulers and 3 workers
while processes, Redis, the database and the business service fail in turn; then docs/design.md §8
is checked on what the SQL store recorded, and the figures are printed (run with ``-s``).

Conveyor reaches Redis, MariaDB and the business service through ``faults.proxy``; the test's
own checks go straight to the services. The run is bounded (a few minutes); ``--long`` (or
``CONVEYOR_FAULTS_LONG=1``) runs 4x the tasks and the full-length faults.
``CONVEYOR_FAULTS_TASKS`` sets the task count, ``CONVEYOR_FAULTS_SEED`` the random seed.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.distributed.harness import FAST_ENV, Cluster, Proc, cluster, free_port, redis_server
from tests.distributed.harness import wait_until as harness_wait
from tests.faults.business import BusinessService
from tests.faults.invariants import Findings, as_log, as_row, check_all
from tests.faults.proxy import ProxyHub

pytestmark = pytest.mark.slow

LEASE_TTL = float(FAST_ENV["CONVEYOR_SCHEDULER__LEADER_LOCK_TTL"])
BATCH = 50
#: An API whose creates may die between their SQL commit and their queue push.
CRASHING_API = (sys.executable, str(Path(__file__).with_name("crashing_api.py")))


@dataclass(frozen=True)
class Profile:
    tasks: int
    submit_seconds: float  # submissions are spread over this long
    freeze: float  # SIGSTOP of the coordination server (Redis or etcd)
    db_cut: float
    crashes: int  # create-crash-hook deaths
    settle: float  # the bound on "every acknowledged task is final" once faults heal

    @classmethod
    def pick(cls, long: bool) -> Profile:
        scale = 4 if long else 1
        tasks = int(os.environ.get("CONVEYOR_FAULTS_TASKS", "5000")) * scale
        if long:
            return cls(tasks, 150, freeze=20, db_cut=15, crashes=4, settle=240)
        return cls(tasks, 55, freeze=10, db_cut=6, crashes=2, settle=120)

    @classmethod
    def short(cls) -> Profile:
        """The shorter pass (etcd): fewer tasks, shorter faults, the whole run within 3 min."""
        tasks = int(os.environ.get("CONVEYOR_FAULTS_TASKS", "1500"))
        return cls(tasks, 30, freeze=6, db_cut=5, crashes=1, settle=60)


# -- the task mix ---------------------------------------------------------------------------

KINDS: list[tuple[str, int]] = [
    ("echo", 34), ("noop", 10), ("slow", 14), ("fail1", 5), ("fail2", 4), ("failp", 3),
    ("timeout", 6), ("http_ok", 10), ("http_slow", 2), ("http_error", 2), ("http_reset", 2),
    ("cancel", 8),
]


def make_task(n: int, kind: str, rng: random.Random) -> dict[str, Any]:
    base: dict[str, Any] = {"idempotency_key": f"t{n}", "metadata": {"kind": kind}}
    if kind in ("echo", "noop"):
        return {**base, "task_type": kind, "payload": {"n": n}}
    if kind in ("slow", "cancel"):
        seconds = round(rng.uniform(0.2, 1.0) if kind == "slow" else rng.uniform(0.5, 2), 2)
        return {**base, "task_type": "sleep", "payload": {"seconds": seconds}}
    if kind.startswith("fail"):
        times: dict[str, Any] = {"times": int(kind[-1])} if kind != "failp" else {}
        return {**base, "task_type": "fail", "payload": times or {"permanent": True}}
    if kind == "timeout":
        return {**base, "task_type": "sleep", "payload": {"seconds": 2}, "timeout_seconds": 0.5,
                "max_retries": 1}
    behave = {"http_ok": "ok", "http_slow": "slow", "http_error": "error",
              "http_reset": "reset"}[kind]
    return {**base, "task_type": "biz", "payload": {"behave": behave, "seconds": 2, "n": n}}


def task_plan(total: int, rng: random.Random) -> list[dict[str, Any]]:
    kinds, weights = zip(*KINDS, strict=True)
    return [make_task(n, rng.choices(kinds, weights)[0], rng) for n in range(total)]


# -- what the API answered ------------------------------------------------------------------


@dataclass
class Ledger:
    """Every answer the API gave, shared by the submitting threads."""

    acked: dict[str, str] = field(default_factory=dict)  # task id -> idempotency key
    kinds: dict[str, str] = field(default_factory=dict)  # task id -> kind
    unanswered: Counter[str] = field(default_factory=Counter)  # why a request got no 2xx
    crash_acked: list[str] = field(default_factory=list)  # 201 from the crash-hook API
    crash_unknown: list[str] = field(default_factory=list)  # keys whose request died with it
    cancels: Counter[str] = field(default_factory=Counter)
    cancel_targets: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, answer: dict[str, Any]) -> str:
        with self.lock:
            tid = str(answer["task_id"])
            self.acked[tid] = str(answer.get("idempotency_key"))
            self.kinds[tid] = answer.get("metadata", {}).get("kind", "?")
            if self.kinds[tid] == "cancel":
                self.cancel_targets.append((time.monotonic(), tid))
            return tid


def post(http: httpx.Client, url: str, body: Any, ledger: Ledger) -> httpx.Response | None:
    try:
        answer = http.post(url, json=body)
    except httpx.HTTPError as exc:
        ledger.unanswered[type(exc).__name__] += 1
        return None
    if answer.status_code not in (200, 201):
        ledger.unanswered[f"HTTP {answer.status_code}"] += 1
        return None
    return answer


def submitter(api: str, plan: list[dict[str, Any]], seconds: float, ledger: Ledger,
              stop: threading.Event) -> None:
    """Submit the plan in batches spread over ``seconds``; a batch with no answer is sent
    again (the idempotency keys make that safe) until it is answered. Every tenth batch goes
    one task per request."""
    batches = [plan[i:i + BATCH] for i in range(0, len(plan), BATCH)]
    began = time.monotonic()
    with httpx.Client(timeout=10) as http:
        for i, batch in enumerate(batches):
            due = began + seconds * i / len(batches)
            stop.wait(max(0.0, due - time.monotonic()))
            todo = list(batch)
            while todo and not stop.is_set():
                if i % 10 == 9:
                    answers = [post(http, f"{api}/api/v1/tasks", t, ledger) for t in todo]
                    todo = [t for t, a in zip(todo, answers, strict=True) if a is None]
                    for a in answers:
                        if a is not None:
                            ledger.record(a.json())
                else:
                    answer = post(http, f"{api}/api/v1/tasks/batch", {"tasks": todo}, ledger)
                    if answer is not None:
                        for t in answer.json()["tasks"]:
                            ledger.record(t)
                        todo = []
                if todo:
                    stop.wait(0.5)


def canceller(api: str, ledger: Ledger, stop: threading.Event, rng: random.Random) -> None:
    """Cancel every "cancel" task at a random moment within 1.5 s of its acknowledgement."""
    done = 0
    with httpx.Client(timeout=10) as http:
        while not stop.is_set() or done < len(ledger.cancel_targets):
            with ledger.lock:
                todo = ledger.cancel_targets[done:]
            if not todo:
                stop.wait(0.05)
                continue
            acked_at, tid = todo[0]
            stop.wait(max(0.0, acked_at + rng.uniform(0, 1.5) - time.monotonic()))
            try:
                answer = http.post(f"{api}/api/v1/tasks/{tid}/cancel")
                ledger.cancels[f"HTTP {answer.status_code}"] += 1
            except httpx.HTTPError as exc:
                ledger.cancels[type(exc).__name__] += 1
            done += 1


@contextlib.contextmanager
def background(*targets: Callable[[], None]) -> Iterator[list[BaseException]]:
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:  # surfaced by the test, never lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,), daemon=True) for t in targets]
    for t in threads:
        t.start()
    try:
        yield errors
    finally:
        for t in threads:
            t.join(120)


# -- the faults -----------------------------------------------------------------------------


@dataclass
class FaultRun:
    c: Cluster
    server: Any  # harness RedisServer
    hub: ProxyHub
    proxies: dict[str, Any]
    biz: BusinessService
    profile: Profile
    rng: random.Random
    ledger: Ledger
    api: str
    faults: Counter[str] = field(default_factory=Counter)
    recovery: dict[str, list[float]] = field(default_factory=dict)
    marks: list[tuple[str, float, float]] = field(default_factory=list)  # (fault, start, healed)
    kills: list[tuple[str, float, list[str]]] = field(default_factory=list)  # worker kills
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # asserted at the end of the run
    seed: int = 0

    def measure(self, what: str, seconds: float) -> None:
        self.recovery.setdefault(what, []).append(seconds)

    def nap(self, low: float = 0.3, high: float = 1.5) -> None:
        time.sleep(self.rng.uniform(low, high))

    def procs(self, role: str) -> list[Proc]:
        return [p for p in self.c.procs
                if p.name.startswith(role) and p.alive and p not in self.c.killed]

    def worker_id(self, proc: Proc) -> str | None:
        found = self.c.db.scalar("SELECT worker_id FROM worker_registry WHERE pid = :p "
                                 "ORDER BY first_seen DESC LIMIT 1", p=proc.pid)
        return None if found is None else str(found)

    def leader(self) -> tuple[str, int] | None:
        try:
            return self.c.leader()
        except Exception:  # Redis down or frozen: nobody we can see
            return None

    def replace_the_dead(self) -> None:
        """A process that died on its own is a finding (asserted at the end); a replacement
        keeps the run going so the §8 checks still run."""
        for proc in list(self.c.procs):
            if proc.alive or proc in self.c.killed:
                continue
            self.c.killed.append(proc)
            self.problems.append(f"{proc.name} (pid {proc.pid}) exited with code "
                                 f"{proc.popen.returncode}:\n{proc.tail(12)}")
            if proc.name.startswith("scheduler"):
                self.c.scheduler()
            elif proc.name.startswith("worker"):
                self.start_worker()

    def start_worker(self) -> Proc:
        return self.c.worker(40)

    # -- processes --------------------------------------------------------------------

    def kill_worker(self) -> None:
        victim = self.rng.choice(self.procs("worker"))
        wid = self.worker_id(victim)
        running = [r.id for r in self.c.db.rows(
            "SELECT id FROM task WHERE status = 'PROCESSING' AND worker_id = :w", w=wid)]
        killed_at = time.time()
        self.c.kill(victim)
        self.faults["kill -9 worker"] += 1
        self.kills.append((wid or "?", killed_at, running))
        self.nap(0.5, 2.0)
        self.start_worker()

    def kill_scheduler(self, leader: bool) -> None:
        lead = self.leader()
        schedulers = self.procs("scheduler")
        if lead is None or not schedulers:
            return
        holder = self.c.by_id(lead[0])
        victim = holder if leader else next((p for p in schedulers if p is not holder), None)
        if victim is None:
            return
        killed_at = time.monotonic()
        self.c.kill(victim)
        self.faults["kill -9 leader" if leader else "kill -9 standby scheduler"] += 1
        if leader:
            harness_wait(lambda: (x := self.leader()) and x[1] > lead[1], 20, 0.02,
                         "a new leader after the kill")
            self.measure("leader failover after kill -9 (s)", time.monotonic() - killed_at)
        self.nap(0.3, 1.5)
        self.c.scheduler()

    def pause_leader(self) -> None:
        lead = self.leader()
        if lead is None:
            return
        paused = self.c.by_id(lead[0])
        began = time.monotonic()
        paused.signal(signal.SIGSTOP)
        self.faults["SIGSTOP leader past its lease"] += 1
        try:
            harness_wait(lambda: (x := self.leader()) and x[1] > lead[1], 20, 0.02,
                         "a new leader while the old one is stopped")
            self.measure("leader failover after SIGSTOP (s)", time.monotonic() - began)
            time.sleep(max(0.0, 3 * LEASE_TTL - (time.monotonic() - began)))
        finally:
            paused.signal(signal.SIGCONT)

    def pause_worker(self) -> None:
        victim = self.rng.choice(self.procs("worker"))
        wid = self.worker_id(victim)
        ttl = float(FAST_ENV["CONVEYOR_WORKER__HEARTBEAT_TTL"])
        began = time.time()
        victim.signal(signal.SIGSTOP)
        self.faults["SIGSTOP worker past its heartbeat TTL"] += 1
        try:
            time.sleep(ttl * 2)
        finally:
            victim.signal(signal.SIGCONT)
        self.marks.append((f"worker {wid} stopped", began, time.time()))

    def crash_creates(self) -> None:
        """An API that dies right after the SQL commit of a create, restarted after each
        death; only 201 answers are counted as acknowledged."""
        for round_ in range(self.profile.crashes):
            port = free_port()
            proc = self.c.start(
                f"crashy-api-{round_}", "--port", str(port), "--probability", "0.25",
                command=CRASHING_API,
            )
            url = f"http://127.0.0.1:{port}"
            harness_wait(lambda u=url: _healthy(u), 60, 0.1, "the crash-hook API")
            with httpx.Client(timeout=10) as http:
                for n in range(200):
                    key = f"crash-{round_}-{n}"
                    body = {"task_type": "echo", "payload": {"crash": key},
                            "idempotency_key": key, "metadata": {"kind": "crash"}}
                    try:
                        answer = http.post(f"{url}/api/v1/tasks", json=body)
                    except httpx.HTTPError:
                        self.ledger.crash_unknown.append(key)
                        break
                    if answer.status_code == 201:
                        self.ledger.crash_acked.append(self.ledger.record(answer.json()))
            proc.popen.wait(10)
            self.c.killed.append(proc)  # it was meant to die
            assert proc.popen.returncode == 70, f"crash-hook API exit {proc.popen.returncode}"
            self.faults["crash after create commit, before queue push"] += 1

    # -- redis ------------------------------------------------------------------------

    def redis_lost(self) -> None:
        began = time.time()
        self.server.kill()
        self.faults["redis-server killed, restarted empty"] += 1
        self.nap(0.5, 1.5)
        self.server.start()
        self.marks.append(("redis restarted empty", began, time.time()))

    def redis_frozen(self) -> None:
        assert self.server.proc is not None
        self.freeze("redis-server", self.server.proc.pid)

    def freeze(self, name: str, pid: int) -> None:
        """The coordination server stopped (SIGSTOP) for the profile's freeze, then resumed."""
        began = time.time()
        os.kill(pid, signal.SIGSTOP)
        self.faults[f"{name} SIGSTOP {self.profile.freeze:g}s"] += 1
        try:
            time.sleep(self.profile.freeze)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.marks.append((f"{name} frozen", began, time.time()))

    def latency(self, name: str) -> None:
        """Rising latency on the link to ``name`` (its proxy): 0.2 s, 0.7 s, then 2 s."""
        proxy = self.proxies[name]
        began = time.time()
        for seconds, hold in ((0.2, 3.0), (0.7, 3.0), (2.0, 4.0)):
            proxy.set("delay", seconds)
            self.faults[f"{name} latency {seconds:g}s"] += 1
            time.sleep(hold)
        proxy.set("pass")
        self.marks.append((f"{name} latency 0.2-2s", began, time.time()))

    # -- database and business service -------------------------------------------------

    def db_cut(self) -> None:
        self.cut("db", self.profile.db_cut)

    def cut(self, name: str, seconds: float) -> None:
        """The link to ``name`` blackholed for ``seconds``: a partition that heals."""
        proxy = self.proxies[name]
        began = time.time()
        proxy.set("blackhole")
        self.faults[f"{name} cut {seconds:g}s (blackhole)"] += 1
        try:
            time.sleep(seconds)
        finally:
            proxy.set("pass")
        self.marks.append((f"{name} cut", began, time.time()))

    def resets(self, name: str) -> None:
        """Every connection to ``name`` reset, and new ones for half a second."""
        proxy = self.proxies[name]
        proxy.set("reset")
        self.faults[f"{name} connections reset"] += 1
        time.sleep(0.5)
        proxy.set("pass")

    def business_faults(self) -> None:
        proxy = self.proxies["biz"]
        for mode in ("reset", "blackhole", "drop_reply"):
            proxy.set(mode)
            self.faults[f"business service proxy {mode} 2s"] += 1
            time.sleep(2)
        proxy.set("pass")

    # -- API --------------------------------------------------------------------------

    def idempotent_burst(self) -> None:
        key = f"burst-{self.rng.randrange(10**9)}"
        body = {"task_type": "echo", "payload": {"burst": key}, "idempotency_key": key,
                "metadata": {"kind": "burst"}}

        def one(_: int) -> tuple[int, str]:
            with httpx.Client(timeout=20) as http:
                answer = http.post(f"{self.api}/api/v1/tasks", json=body)
                return answer.status_code, answer.json().get("task_id", "")

        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(one, range(50)))
        self.faults["50 concurrent submits, one idempotency key"] += 1
        statuses = Counter(s for s, _ in answers)
        ids = {i for _, i in answers}
        rows = self.c.db.scalar("SELECT COUNT(*) FROM task WHERE idempotency_key = :k", k=key)
        self.notes.append(f"idempotency burst: answers {dict(statuses)}, {len(ids)} distinct "
                          f"id(s), {rows} row(s)")
        if statuses != Counter({201: 1, 200: 49}) or len(ids) != 1 or rows != 1:
            self.problems.append(f"idempotency burst {key}: {dict(statuses)}, ids {ids}, "
                                 f"{rows} rows")
        for tid in ids:
            self.ledger.record({"task_id": tid, "idempotency_key": key,
                                "metadata": {"kind": "burst"}})

    def manual_retries(self, limit: int = 20) -> None:
        failed = [r.id for r in self.c.db.rows(
            "SELECT id FROM task WHERE status IN ('FAILED', 'TIMEOUT') "
            "ORDER BY id LIMIT :n", n=limit)]
        with httpx.Client(timeout=10) as http:
            for tid in failed:
                answer = http.post(f"{self.api}/api/v1/tasks/{tid}/retry")
                if answer.status_code == 200:
                    self.faults["manual retry of a final task"] += 1


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# -- the run ----------------------------------------------------------------------------------


def setup_types(api: str, biz_url: str) -> None:
    config = {"executor": "http", "executor_config": {"url": biz_url}, "timeout_seconds": 1,
              "max_retries": 2, "backoff": {"base": 0.1, "factor": 2, "cap": 0.5}}
    with httpx.Client(timeout=10) as http:
        answer = http.put(f"{api}/api/v1/task-configs/biz", json=config)
        assert answer.status_code in (200, 201), answer.text


def fault_sequence(run: FaultRun) -> None:
    """The Redis run's faults, in order."""
    play(run, [
        run.kill_worker,
        lambda: run.kill_scheduler(leader=True),
        run.idempotent_burst,
        run.kill_worker,
        lambda: run.kill_scheduler(leader=False),
        run.pause_leader,
        run.pause_worker,
        run.crash_creates,
        run.redis_lost,
        run.business_faults,
        lambda: run.latency("redis"),
        run.db_cut,
        run.kill_worker,
        lambda: run.resets("db"),
        run.redis_frozen,
        lambda: run.kill_scheduler(leader=True),
        run.kill_worker,
    ])


def play(run: FaultRun, steps: list[Callable[[], None]]) -> None:
    """Each fault bounded; a random pause before each, so kills land at random moments."""
    for step in steps:
        run.nap()
        run.replace_the_dead()
        step()
    run.replace_the_dead()


def first_progress_after(c: Cluster, at: float) -> float | None:
    found = c.db.scalar("SELECT MIN(at) FROM task_logs WHERE to_status = 'SUCCESS' AND at > :t",
                        t=at)
    return None if found is None else float(found) - at


def worker_recovery(c: Cluster, run: FaultRun) -> None:
    """For each killed worker: how long until every task it was running started again
    elsewhere (or was finished by someone)."""
    for _wid, killed_at, running in run.kills:
        if not running:
            continue
        back: dict[str, float] = {}
        for r in c.db.rows("SELECT task_id, at FROM task_logs WHERE at > :t AND to_status IN "
                           "('PROCESSING', 'CANCELLED') ORDER BY id", t=killed_at):
            if r.task_id in running:
                back.setdefault(r.task_id, float(r.at))
        if len(back) == len(running):
            run.measure("worker kill -9: its running tasks restarted after (s)",
                        max(back.values()) - killed_at)
            slowest = max(back, key=lambda tid: back[tid])
            rows = c.db.rows("SELECT attempt, from_status, to_status, at, worker_id, epoch, "
                             "message FROM task_logs WHERE task_id = :t ORDER BY id", t=slowest)
            run.notes.append(f"slowest restart after the kill at {killed_at:.3f}: {slowest} "
                             + "; ".join(f"{r.at:.3f} {r.from_status}->{r.to_status} "
                                         f"a{r.attempt} e{r.epoch} {r.message[:60]}"
                                         for r in rows))


def wait_all_final(c: Cluster, ledger: Ledger, bound: float) -> tuple[float, list[str]]:
    """Wait (bounded) until every task row is final and every acknowledged id has a row."""
    began = time.monotonic()
    acked = set(ledger.acked)

    def settled() -> list[str]:
        rows = c.db.rows("SELECT id, status FROM task")
        present = {r.id for r in rows}
        return [r.id for r in rows if r.status not in FINAL] + sorted(acked - present)

    left = settled()
    while left and time.monotonic() - began < bound:
        time.sleep(0.5)
        left = settled()
    return time.monotonic() - began, left


FINAL = ("SUCCESS", "FAILED", "TIMEOUT", "CANCELLED")


def evidence(c: Cluster, task_ids: list[str], limit: int = 5) -> str:
    out = []
    for tid in task_ids[:limit]:
        task = c.db.rows("SELECT id, task_type, status, attempt, retry_count, max_retries, "
                         "worker_id, payload FROM task WHERE id = :i", i=tid)
        logs = c.db.rows("SELECT id, attempt, from_status, to_status, at, worker_id, epoch, "
                         "message FROM task_logs WHERE task_id = :i ORDER BY id", i=tid)
        out.append(f"task {tid}: {task[0] if task else 'NO ROW'}")
        out += [f"    {tuple(r)}" for r in logs]
    return "\n".join(out)


def whereabouts(c: Cluster, task_ids: list[str]) -> str:
    """Every Redis key of the run holding one of ``task_ids`` (a stuck task's last trace)."""
    wanted = set(task_ids)
    out: list[str] = []
    live = set()
    with c.redis() as r:
        live = set(r.zrange(f"{c.prefix}workers", 0, -1))
        for key in r.scan_iter(f"{c.prefix}*", count=1000):
            kind = r.type(key)
            if kind == "list":
                members = r.lrange(key, 0, -1)
            elif kind == "zset":
                members = r.zrange(key, 0, -1)
            else:
                continue
            for m in members:
                if str(m).split("|")[0] in wanted:
                    out.append(f"  {m} in {key} ({kind})")
    return f"live workers {sorted(live)}\n" + "\n".join(out or ["  (in no Redis key)"])


def report(run: FaultRun, found: Findings, settle: float, took: float) -> None:
    print(f"\n===== fault run: {found.counts['tasks']} tasks, seed {run.seed}, "
          f"{took:.0f}s =====")
    print("faults injected:")
    for kind, n in sorted(run.faults.items()):
        print(f"  {n:3d}  {kind}")
    print("final states: " + ", ".join(
        f"{k[6:]} {v}" for k, v in sorted(found.counts.items()) if k.startswith("final ")))
    print("counts: " + ", ".join(
        f"{k} {v}" for k, v in sorted(found.counts.items()) if not k.startswith("final ")))
    print(f"API answers: {len(run.ledger.acked)} tasks acknowledged; requests without a 2xx "
          f"(then resent): {dict(run.ledger.unanswered)}")
    print(f"crash hook: {len(run.ledger.crash_acked)} creates answered 201 by the crashing API; "
          f"{len(run.ledger.crash_unknown)} requests died with it")
    print(f"cancels: {dict(run.ledger.cancels)}")
    repeats = sum(1 for n in run.biz.deliveries.values() if n > 1)
    print(f"business service: {dict(run.biz.behaviours)}; {repeats} attempt(s) delivered "
          "more than once")
    print("recovery (s):")
    for what, values in sorted(run.recovery.items()):
        print(f"  {what}: " + ", ".join(f"{v:.2f}" for v in values))
    print(f"  every acknowledged task final {settle:.1f}s after the last fault healed")
    for note in run.notes:
        print(note)
    for name, items in found.violations().items():
        print(f"VIOLATION {name}: {len(items)}; first: {items[:3]}")


@pytest.mark.timeout(900)
def test_guarantees_hold_under_faults(tmp_path: Path, long_mode: bool) -> None:
    long = long_mode or os.environ.get("CONVEYOR_FAULTS_LONG") == "1"
    profile = Profile.pick(long)
    seed = pick_seed()
    with (
        redis_server(tmp_path) as server,
        ProxyHub() as hub,
        BusinessService() as biz,
        cluster(tmp_path, redis_url=server.url) as c,
    ):
        proxies = link_proxies(c, hub, biz, "redis", "127.0.0.1", server.port)
        c.extra_env["CONVEYOR_REDIS_URL"] = f"redis://{proxies['redis'].address}/0"
        run = FaultRun(c, server, hub, proxies, biz, profile, random.Random(seed), Ledger(),
                       start_fleet(c, proxies), seed=seed)
        execute(run, fault_sequence)


def pick_seed() -> int:
    return int(os.environ.get("CONVEYOR_FAULTS_SEED", str(random.randrange(10**6))))


def link_proxies(
    c: Cluster, hub: ProxyHub, biz: BusinessService, coordination: str, host: str, port: int
) -> dict[str, Any]:
    """Proxies in front of the coordination server, the database and the business service;
    the cluster's processes reach the database and the business service through them (the
    caller points them at the coordination proxy, in the form its backend's URL takes)."""
    db_url = sa.make_url(c.db.url)
    proxies = {
        coordination: hub.add(coordination, host, port),
        "db": hub.add("db", db_url.host or "127.0.0.1", db_url.port or 3306),
        "biz": hub.add("biz", "127.0.0.1", biz.port),
    }
    c.extra_env.update(
        CONVEYOR_DATABASE_URL=db_url.set(
            host="127.0.0.1", port=proxies["db"].port).render_as_string(False),
        CONVEYOR_HTTP_ALLOWED_HOSTS="127.0.0.1",
    )
    return proxies


def start_fleet(c: Cluster, proxies: dict[str, Any]) -> str:
    """An API, 2 schedulers and 3 workers (capacity 40), up and elected; the API's URL."""
    c.api(wait=False)
    for _ in range(2):
        c.scheduler()
    for _ in range(3):
        c.worker(40)
    c.wait_api()
    c.wait_workers(3)
    c.wait_leader()
    api = c.url or ""
    setup_types(api, f"http://{proxies['biz'].address}/work")
    return api


def execute(
    run: FaultRun, sequence: Callable[[FaultRun], None],
    where: Callable[[Cluster, list[str]], str] = whereabouts,
) -> None:
    """Submit the seeded plan while ``sequence`` injects its faults; once healed, wait for
    every task to be final, print the figures and assert §8 on the SQL rows. ``where`` says
    where the coordination backend holds tasks that never became final."""
    c, api, profile, ledger, seed = run.c, run.api, run.profile, run.ledger, run.seed
    began = time.monotonic()
    plan = task_plan(profile.tasks, random.Random(seed))
    stop, submitted = threading.Event(), threading.Event()

    def submit_all() -> None:
        try:
            submitter(api, plan, profile.submit_seconds, ledger, stop)
        finally:
            submitted.set()

    with background(
        submit_all,
        lambda: canceller(api, ledger, stop, random.Random(seed + 1)),
    ) as errors:
        try:
            sequence(run)
            run.manual_retries()
        finally:
            for proxy in run.proxies.values():
                proxy.set("pass")
            # Let the submitter finish on a healthy system, then stop the canceller.
            submitted.wait(120)
            stop.set()
    assert not errors, errors
    healed = time.time()
    settle, left = wait_all_final(c, ledger, profile.settle)
    for what, _start, end in run.marks:
        gap = first_progress_after(c, end)
        if gap is not None:
            run.measure(f"first SUCCESS after {what} healed (s)", gap)
    worker_recovery(c, run)
    rows = [as_row(r) for r in c.db.rows(
        "SELECT id, status, attempt, max_retries FROM task")]
    logs = [as_log(r) for r in c.db.rows(
        "SELECT id, task_id, attempt, from_status, to_status, at, message, worker_id, "
        "epoch FROM task_logs ORDER BY id")]
    found = check_all(rows, logs, LEASE_TTL)
    report(run, found, time.time() - healed if left else settle, time.monotonic() - began)
    check_outcome(c, run, found, left, where)


def check_outcome(
    c: Cluster, run: FaultRun, found: Findings, left: list[str],
    where: Callable[[Cluster, list[str]], str],
) -> None:
    """The §8 assertions, each with the rows that broke it."""
    assert not left, (f"{len(left)} tasks not final (or acknowledged but missing) after "
                      f"{run.profile.settle:g}s:\n{evidence(c, left)}\n"
                      f"where the coordination backend holds them:\n{where(c, left)}")
    present = {r.id for r in c.db.rows("SELECT id FROM task")}
    assert set(run.ledger.crash_acked) <= present
    assert not run.problems, "\n".join(run.problems)
    violations = found.violations()
    assert not violations, "\n".join(
        f"{name}: {items[:5]}\n{evidence(c, [tid for tid, _ in items])}"
        for name, items in violations.items())
    kinds = run.ledger.kinds
    status = {r.id: r.status for r in c.db.rows("SELECT id, status FROM task")}
    odd = {t: status[t] for t, k in kinds.items()
           if k == "cancel" and status[t] not in ("CANCELLED", "SUCCESS")}
    assert not odd, f"cancel races ended outside CANCELLED/SUCCESS:\n{evidence(c, list(odd))}"
    c.check_alive()
