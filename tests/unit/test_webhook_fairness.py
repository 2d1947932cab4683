"""``FairQueue``: destinations served in turn, each capped in flight and in what it holds."""

from __future__ import annotations

from conveyor.webhooks.fair import FairQueue


def queue(per_key: int = 2, max_items: int = 100, max_per_key: int = 50) -> FairQueue[str]:
    return FairQueue(per_key=per_key, max_items=max_items, max_per_key=max_per_key)


def test_destinations_are_served_round_robin() -> None:
    fair = queue(per_key=10)
    for n in range(3):
        fair.admit("slow:80", f"s{n}")
    fair.admit("fast:80", "f0")
    fair.admit("other:80", "o0")
    taken = [fair.take() for _ in range(5)]
    assert [item for _key, item in filter(None, taken)] == ["s0", "f0", "o0", "s1", "s2"]
    assert fair.take() is None


def test_a_destination_at_its_cap_is_skipped_until_one_is_done() -> None:
    fair = queue(per_key=2)
    for n in range(5):
        fair.admit("slow:80", f"s{n}")
    assert fair.take() == ("slow:80", "s0")
    assert fair.take() == ("slow:80", "s1")
    assert fair.take() is None  # two in flight: the third waits although it is queued
    fair.admit("fast:80", "f0")
    assert fair.take() == ("fast:80", "f0")  # ... and never blocks another destination
    fair.done("slow:80")
    assert fair.take() == ("slow:80", "s2")


def test_one_destinations_backlog_cannot_fill_the_shared_one() -> None:
    fair = queue(max_items=10, max_per_key=3)
    assert [fair.admit("slow:80", "s") for _ in range(5)] == [True, True, True, False, False]
    assert fair.admit("fast:80", "f")
    assert fair.held == 4


def test_an_item_counts_until_it_is_forgotten_and_a_retry_is_never_refused() -> None:
    """A dead receiver's deliveries between tries still count: memory stays bounded."""
    fair = queue(max_items=2)
    assert fair.admit("a:80", "1") and fair.admit("b:80", "2")
    assert fair.take() == ("a:80", "1")
    fair.done("a:80")  # the try failed; the delivery waits out its backoff, held
    assert not fair.admit("c:80", "3")
    fair.again("a:80", "1")  # another try, admitted although the bound is reached
    assert fair.take() == ("b:80", "2")
    assert fair.take() == ("a:80", "1")
    fair.done("a:80")
    fair.forget("a:80")  # given up on
    assert fair.held == 1
    assert fair.admit("c:80", "3")
