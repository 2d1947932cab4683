"""``batches.isolate``: a failed batch is split until only its bad members fail."""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.batches import isolate
from conveyor.errors import BackendUnavailable


class Writer:
    """Fails a write holding a poison item; counts the transactions it was asked for."""

    def __init__(self, poison: set[int], down: set[int] | None = None) -> None:
        self.poison, self.down, self.calls = poison, down or set(), 0

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.calls += 1
        if bad := self.poison & set(items):
            raise ValueError(f"refused {sorted(bad)}")
        if self.down & set(items):
            raise BackendUnavailable("down")
        return [i * 10 for i in items]


async def test_a_clean_batch_is_one_write() -> None:
    write = Writer(set())
    assert await isolate(list(range(8)), write) == [(list(range(8)), [i * 10 for i in range(8)])]
    assert write.calls == 1


async def test_only_the_poison_member_fails_in_a_few_writes() -> None:
    write = Writer({97})
    written = await isolate(list(range(240)), write)
    failed = [part for part, result in written if isinstance(result, Exception)]
    assert failed == [[97]]
    done = [i for part, result in written if not isinstance(result, Exception) for i in part]
    assert done == [i for i in range(240) if i != 97]  # every other member, in order
    assert write.calls <= 2 * 8 + 1  # about 2·log2(240), not 240


async def test_backend_unavailable_is_not_split_and_keeps_what_was_written() -> None:
    write = Writer({1}, down={6})
    written = await isolate(list(range(8)), write)
    by_part = {tuple(part): result for part, result in written}
    assert isinstance(by_part[(1,)], ValueError)
    assert by_part[(0,)] == [0] and by_part[(2, 3)] == [20, 30]
    assert isinstance(by_part[(4, 5, 6, 7)], BackendUnavailable)
