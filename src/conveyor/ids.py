"""Sortable unique task ids (ULID: 48-bit millisecond time + 80 random bits, Crockford base32).

Sortable ids keep the primary-key index append-mostly and make cursor paging by id follow
creation order, which is what users scrolling a task list expect.
"""

from __future__ import annotations

import os
import re
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID = re.compile(f"[{_ALPHABET}]{{26}}")


def new_id(now: float | None = None) -> str:
    """Return a 26-character ULID for ``now`` (seconds since the epoch, default: the clock)."""
    millis = int((time.time() if now is None else now) * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def is_id(text: str) -> bool:
    """Whether ``text`` can be an id ``new_id`` made: anything else names no task, and never
    reaches a query (a NUL character in it would make PostgreSQL refuse the statement)."""
    return _ID.fullmatch(text) is not None
