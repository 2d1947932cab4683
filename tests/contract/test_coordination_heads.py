"""``TaskQueues.heads``: the dispatcher's one read of a pass, the paused names and the heads of
the priorities, as ``paused`` and ``peek`` would answer them.

See ``coordination_support`` for how the contract runs over every backend.
"""

from __future__ import annotations

from conveyor.coordination.heads import Heads
from conveyor.coordination.protocol import Coordination
from conveyor.models import Priority, QueueItem

from .coordination_support import H, L, N, item


def read(heads: Heads) -> dict[Priority, list[QueueItem]]:
    """The priorities read with items; a backend may or may not list one it read empty."""
    return {p: items for p, items in heads.items.items() if items}


async def test_heads_reads_every_unpaused_priority_as_peek_does(coord: Coordination) -> None:
    await coord.queues.enqueue([item("h", H), item("a"), item("b"), item("l", L)])
    await coord.queues.set_paused("low", True)
    heads = await coord.queues.heads(2, every=True)
    assert heads.paused == {"low"}
    assert read(heads) == {H: [item("h", H)], N: [item("a"), item("b")]}
    assert await coord.queues.peek(N, 10) == [item("a"), item("b")]  # left in place


async def test_strict_heads_stop_once_deep_enough_not_counting_paused_types(
    coord: Coordination,
) -> None:
    mail = [item(f"m{i}", H, "mail.send") for i in range(2)]
    await coord.queues.enqueue([*mail, item("h", H), item("a"), item("l", L)])
    assert read(await coord.queues.heads(3)) == {H: [*mail, item("h", H)]}
    await coord.queues.set_paused("mail.send", True)
    heads = await coord.queues.heads(3)  # two of high's three are paused: normal, then low
    assert heads.paused == {"mail.send"}
    assert read(heads) == {H: [*mail, item("h", H)], N: [item("a")], L: [item("l", L)]}
    assert read(await coord.queues.heads(1)) == {H: mail[:1], N: [item("a")]}


async def test_heads_follow_tenant_turns_and_weights(coord: Coordination) -> None:
    a = [QueueItem(f"a{i}", "echo", N, tenant="acme") for i in range(3)]
    b = [QueueItem(f"b{i}", "echo", N, tenant="beta") for i in range(3)]
    await coord.queues.enqueue([*a, *b])
    weights = {"acme": 2}
    heads = await coord.queues.heads(5, weights)
    assert heads.items[N] == await coord.queues.peek(N, 5, weights)
    assert heads.items[N] == [a[0], a[1], b[0], a[2], b[1]]
