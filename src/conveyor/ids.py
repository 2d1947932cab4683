"""Sortable unique task ids (ULID: 48-bit millisecond time + 80 random bits, Crockford base32).

Sortable ids keep the primary-key index append-mostly and make cursor paging by id follow
creation order, which is what users scrolling a task list expect.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now: float | None = None) -> str:
    """Return a 26-character ULID for ``now`` (seconds since the epoch, default: the clock)."""
    millis = int((time.time() if now is None else now) * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))
