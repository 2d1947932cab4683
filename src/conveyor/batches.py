"""One bad member must not fail its batch: split a failed batch until only the guilty fail.

Creates are coalesced across callers, starts and finishes are batched per worker; each batch is
one transaction, so one row the database refuses rolls back everyone's. ``isolate`` writes the
batch; if that fails for a reason that lies in the data (anything but ``BackendUnavailable``,
which fails every member alike and is retried by the caller), it halves the batch and writes
each half, down to single members. One poison member among n costs about 2·log2(n) extra
transactions; each member's answer is either its part of a committed write or its own error, and
a failed transaction wrote nothing, so a member answered with an error has written nothing.
Cancellation is never caught.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from conveyor.errors import BackendUnavailable

T = TypeVar("T")
R = TypeVar("R")


async def isolate(
    items: Sequence[T], write: Callable[[Sequence[T]], Awaitable[R]]
) -> list[tuple[Sequence[T], R | Exception]]:
    """Write ``items`` in as few transactions as their faults allow.

    Returns, in input order, the parts of ``items`` with what ``write`` returned for each, or
    with the exception of a single member that failed alone. ``BackendUnavailable`` is not split
    on: its part, and every part after it, carries it unwritten, while parts written before keep
    their results (their callers must not hear an error for what was stored)."""
    if not items:
        return []
    try:
        return [(items, await write(items))]
    except BackendUnavailable as exc:
        return [(items, exc)]
    except Exception as exc:
        if len(items) == 1:
            return [(items, exc)]
    half = len(items) // 2
    first = await isolate(items[:half], write)
    down = next((e for _, e in first if isinstance(e, BackendUnavailable)), None)
    rest = [(items[half:], down)] if down else await isolate(items[half:], write)
    return [*first, *rest]


def unavailable(written: Sequence[tuple[object, object]]) -> None:
    """Raise the ``BackendUnavailable`` of a part, for callers that retry the whole batch."""
    for _, result in written:
        if isinstance(result, BackendUnavailable):
            raise result
