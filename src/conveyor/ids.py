"""Sortable unique task ids (ULID: 48-bit millisecond time + 80 random bits, Crockford base32).

Sortable ids keep the primary-key index append-mostly and make cursor paging by id follow
creation order, which is what users scrolling a task list expect.

Encoding goes through the C base32 codec (RFC 4648's alphabet translated to Crockford's), about
a microsecond an id, so a 10,000-node workflow does not spend a tenth of a second on its ids.
``new_ids`` gives a run of ids that increase strictly (ULID's monotonic mode: one random start,
then +1): a workflow numbers its nodes parents first, so the order of ids is an order of the
graph, and every transaction that locks rows by id locks parents before their children.
"""

from __future__ import annotations

import base64
import os
import re
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID = re.compile(f"[{_ALPHABET}]{{26}}")
_FROM_RFC = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET)
# 128 bits padded to 160 (a multiple of base32's 40-bit groups): the first 6 of the 32 digits
# are the 30 padding bits, the other 26 the ULID (2 zero bits, then the 128).
_PAD = b"\0\0\0\0"
MAX_RUN = 1 << 16  # ids one new_ids call may give: the start leaves room for them below 2**80


def new_id(now: float | None = None) -> str:
    """Return a 26-character ULID for ``now`` (seconds since the epoch, default: the clock)."""
    return new_ids(1, now)[0]


def new_ids(count: int, now: float | None = None) -> list[str]:
    """``count`` ULIDs for ``now``, each greater than the one before it."""
    if not 0 <= count <= MAX_RUN:
        raise ValueError(f"count must be within 0..{MAX_RUN}, got {count}")
    millis = max(0, int((time.time() if now is None else now) * 1000))  # no time before 1970
    start = (millis << 80) | (int.from_bytes(os.urandom(10), "big") >> 1)
    return [_encode(start + i) for i in range(count)]


def _encode(value: int) -> str:
    text = base64.b32encode(_PAD + value.to_bytes(16, "big")).decode("ascii")
    return text[6:].translate(_FROM_RFC)


def is_id(text: str) -> bool:
    """Whether ``text`` can be an id ``new_id`` made: anything else names no task, and never
    reaches a query (a NUL character in it would make PostgreSQL refuse the statement)."""
    return _ID.fullmatch(text) is not None
