"""One bad member must not fail its batch: split a failed batch until only the guilty fail.

Creates are coalesced across callers, starts and finishes are batched per worker; each batch is
one transaction, so one row the database refuses rolls back everyone's. ``isolate`` writes the
batch; if that fails for a reason that lies in the data (anything but ``BackendUnavailable``,
which fails every member alike and is retried by the caller), it halves the batch and writes
each half, down to single members. One poison member among n costs about 2·log2(n) extra
transactions; each member's answer is either its part of a committed write or its own error, and
a failed transaction wrote nothing, so a member answered with an error has written nothing.
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

    Returns, in input order, the parts actually written with what ``write`` returned for each,
    or with the exception of a single member that failed alone. ``BackendUnavailable`` (and
    cancellation) propagate: they say nothing about which member is at fault."""
    if not items:
        return []
    try:
        return [(items, await write(items))]
    except BackendUnavailable:
        raise
    except Exception as exc:
        if len(items) == 1:
            return [(items, exc)]
    half = len(items) // 2
    return [*await isolate(items[:half], write), *await isolate(items[half:], write)]
