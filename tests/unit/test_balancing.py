"""Load balancers and the dispatcher's pure planning step."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import pytest

from conveyor.balancing import (
    BUILTIN,
    ConsistentHash,
    LeastTask,
    Random,
    RoundRobin,
    Weighted,
    make_balancer,
)
from conveyor.errors import ConfigError
from conveyor.models import Priority, QueueItem, WorkerInfo
from conveyor.scheduler.planning import plan


def worker(
    wid: str, *, capacity: int = 10, load: int = 0, types: tuple[str, ...] = (),
    weight: float = 1.0, draining: bool = False,
) -> WorkerInfo:
    return WorkerInfo(
        worker_id=wid, host="h", pid=1, capacity=capacity, types=types, weight=weight,
        load=load, draining=draining,
    )


def item(n: int | str, task_type: str = "echo", priority: Priority = Priority.NORMAL) -> QueueItem:
    return QueueItem(f"task-{n}", task_type, priority)


def test_builtin_names() -> None:
    assert set(BUILTIN) == {"least_task", "round_robin", "random", "weighted", "consistent_hash"}
    for name in BUILTIN:
        assert make_balancer(name) is not None


def test_unknown_balancer_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"scheduler\.load_balance_strategy.*'nope'"):
        make_balancer("nope")


def test_plugin_balancer_is_used() -> None:
    chosen = make_balancer("mine", {"mine": LeastTask})
    assert isinstance(chosen, LeastTask)


# -- least task -----------------------------------------------------------------------------


def test_least_task_picks_lowest_relative_load() -> None:
    workers = [worker("a", capacity=10, load=5), worker("b", capacity=4, load=1),
               worker("c", capacity=10, load=3)]
    assert LeastTask().choose(item(1), workers).worker_id == "b"  # 0.25 < 0.3 < 0.5


def test_least_task_ties_prefer_most_free_slots_then_id() -> None:
    workers = [worker("a", capacity=2, load=0), worker("b", capacity=8, load=0)]
    assert LeastTask().choose(item(1), workers).worker_id == "b"
    equal = [worker("z"), worker("m")]
    assert LeastTask().choose(item(1), equal).worker_id == "m"


# -- round robin ----------------------------------------------------------------------------


def test_round_robin_cycles_in_worker_id_order() -> None:
    rr = RoundRobin()
    workers = [worker("c"), worker("a"), worker("b")]
    picks = [rr.choose(item(n), workers).worker_id for n in range(6)]
    assert picks == ["a", "b", "c", "a", "b", "c"]


def test_round_robin_spreads_evenly() -> None:
    rr = RoundRobin()
    workers = [worker(w) for w in "abcd"]
    counts = Counter(rr.choose(item(n), workers).worker_id for n in range(400))
    assert set(counts.values()) == {100}


# -- random ---------------------------------------------------------------------------------


def test_random_with_a_seeded_rng_is_reproducible() -> None:
    workers = [worker(w) for w in "abc"]
    one = Random(random.Random(42))
    two = Random(random.Random(42))
    picks_one = [one.choose(item(n), workers).worker_id for n in range(50)]
    picks_two = [two.choose(item(n), workers).worker_id for n in range(50)]
    assert picks_one == picks_two
    assert set(picks_one) == {"a", "b", "c"}


def test_random_only_returns_candidates() -> None:
    rng = Random(random.Random(1))
    workers = [worker("x"), worker("y")]
    assert {rng.choose(item(n), workers).worker_id for n in range(100)} == {"x", "y"}


# -- weighted -------------------------------------------------------------------------------


def test_weighted_follows_weight_times_free_slots() -> None:
    wb = Weighted(random.Random(3))
    workers = [worker("a", weight=1.0), worker("b", weight=3.0)]
    counts = Counter(wb.choose(item(n), workers).worker_id for n in range(4000))
    share_b = counts["b"] / 4000
    assert 0.70 < share_b < 0.80  # expected 0.75


def test_weighted_counts_free_slots_not_capacity() -> None:
    wb = Weighted(random.Random(5))
    workers = [worker("busy", capacity=10, load=9), worker("idle", capacity=10, load=0)]
    counts = Counter(wb.choose(item(n), workers).worker_id for n in range(2000))
    assert counts["idle"] > 8 * counts["busy"]  # 10 free slots against 1


def test_weighted_never_picks_a_full_worker() -> None:
    wb = Weighted(random.Random(9))
    workers = [worker("full", capacity=2, load=2), worker("open", capacity=2, load=0)]
    assert {wb.choose(item(n), workers).worker_id for n in range(200)} == {"open"}


# -- consistent hash ------------------------------------------------------------------------


def assign_all(balancer: ConsistentHash, workers: Sequence[WorkerInfo]) -> dict[str, str]:
    return {i.task_id: balancer.choose(i, workers).worker_id for i in map(item, range(2000))}


def test_consistent_hash_same_id_same_worker() -> None:
    workers = [worker(w) for w in ("w1", "w2", "w3", "w4")]
    ch = ConsistentHash()
    first = assign_all(ch, workers)
    assert first == assign_all(ch, list(reversed(workers)))  # order does not matter
    assert first == assign_all(ConsistentHash(), workers)  # nor the instance
    counts = Counter(first.values())
    assert set(counts) == {"w1", "w2", "w3", "w4"}
    assert min(counts.values()) > 2000 / 4 * 0.5  # 100 virtual nodes keep it roughly even


def test_consistent_hash_removing_a_worker_moves_only_its_share() -> None:
    workers = [worker(w) for w in ("w1", "w2", "w3", "w4")]
    ch = ConsistentHash()
    before = assign_all(ch, workers)
    after = assign_all(ch, [w for w in workers if w.worker_id != "w3"])
    moved = {tid for tid in before if before[tid] != after[tid]}
    assert moved == {tid for tid, wid in before.items() if wid == "w3"}
    assert all(after[tid] != "w3" for tid in after)


def test_consistent_hash_adding_a_worker_only_takes_tasks_to_it() -> None:
    workers = [worker(w) for w in ("w1", "w2", "w3")]
    ch = ConsistentHash()
    before = assign_all(ch, workers)
    after = assign_all(ch, [*workers, worker("w4")])
    for tid in before:
        assert after[tid] in (before[tid], "w4")


# -- the dispatcher's plan ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_plan_never_overfills_a_worker(name: str) -> None:
    workers = [worker("a", capacity=3, load=1), worker("b", capacity=2, load=0),
               worker("c", capacity=5, load=5)]
    items = [item(n) for n in range(20)]
    moves = plan(items, workers, make_balancer(name), set())
    per_worker = Counter(wid for _, wid in moves)
    assert per_worker["a"] == 2
    assert per_worker["b"] == 2
    assert "c" not in per_worker
    assert len(moves) == 4
    assert [i for i, _ in moves] == items[:4]  # in the given (priority) order


def test_plan_over_a_large_fleet_sees_each_move_in_the_load_it_balances_on() -> None:
    """A hundred workers, two routes sharing them: every id sees the load the ids before it
    added, on whichever route it was added, and a full worker takes no more."""
    workers = [worker(f"w{n:03}", capacity=2 + n % 3, load=n % 2,
                      types=("echo", "sleep") if n % 2 else ("echo",)) for n in range(100)]
    items = [item(n, "sleep" if n % 3 == 0 else "echo") for n in range(400)]
    moves = plan(items, workers, LeastTask(), set())

    free = {w.worker_id: w.free for w in workers}
    load = {w.worker_id: w.load for w in workers}
    by_id = {w.worker_id: w for w in workers}
    expected = []
    for it in items:
        able = [w for w in workers if w.supports(it.task_type) and free[w.worker_id] > 0]
        if not able:
            continue
        chosen = min(able, key=lambda w: (load[w.worker_id] / w.capacity, -free[w.worker_id],
                                          w.worker_id))
        expected.append((it, chosen.worker_id))
        load[chosen.worker_id] += 1
        free[chosen.worker_id] -= 1
    assert moves == expected
    assert all(n <= by_id[w].free for w, n in Counter(w for _, w in moves).items())


def test_plan_least_task_spreads_by_load() -> None:
    workers = [worker("a", capacity=4), worker("b", capacity=4)]
    moves = plan([item(n) for n in range(4)], workers, LeastTask(), set())
    assert Counter(wid for _, wid in moves) == {"a": 2, "b": 2}


def test_plan_skips_paused_types() -> None:
    workers = [worker("a", capacity=10)]
    items = [item(1, "echo"), item(2, "sleep"), item(3, "echo")]
    moves = plan(items, workers, LeastTask(), {"sleep"})
    assert [i.task_id for i, _ in moves] == ["task-1", "task-3"]


def test_plan_skips_types_no_worker_supports() -> None:
    workers = [worker("a", types=("echo",)), worker("b", types=("sleep",))]
    items = [item(1, "echo"), item(2, "resize"), item(3, "sleep")]
    moves = plan(items, workers, LeastTask(), set())
    assert [(i.task_id, wid) for i, wid in moves] == [("task-1", "a"), ("task-3", "b")]


def test_plan_worker_without_types_runs_everything() -> None:
    moves = plan([item(1, "anything")], [worker("a")], LeastTask(), set())
    assert [wid for _, wid in moves] == ["a"]


def test_plan_skips_draining_workers() -> None:
    moves = plan([item(1)], [worker("a", draining=True)], LeastTask(), set())
    assert moves == []


def test_plan_with_no_workers_or_no_items() -> None:
    assert plan([item(1)], [], LeastTask(), set()) == []
    assert plan([], [worker("a")], LeastTask(), set()) == []


def test_plan_does_not_mutate_the_workers_it_was_given() -> None:
    workers = [worker("a", capacity=2)]
    plan([item(1), item(2)], workers, LeastTask(), set())
    assert workers[0].load == 0


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_balancer_places_a_type_only_on_a_worker_that_runs_it(name: str) -> None:
    """The idle worker without the app's type is never chosen for it, whatever the strategy
    prefers; the type nobody runs is left out, and the ids behind it still placed."""
    workers = [worker("idle", capacity=10, types=("echo",)),
               worker("busy", capacity=10, load=8, types=("echo", "resize"))]
    items = [item(1, "resize"), item(2, "thumbnail"), item(3, "resize"), item(4, "echo")]
    moves = plan(items, workers, make_balancer(name), set())
    placed = {i.task_id: wid for i, wid in moves}
    assert placed["task-1"] == placed["task-3"] == "busy"
    assert "task-2" not in placed
    assert "task-4" in placed
