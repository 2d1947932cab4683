"""What a value must be for the store to keep it exactly, checked before it reaches a batch.

Every task body is stored as orjson text and every short field in a column of its own, on
three databases. Each refuses (or silently changes) something different: orjson writes NaN and
Infinity as ``null`` and cannot write integers beyond 64 bits, lone UTF-16 surrogates or
documents nested past 254 levels; PostgreSQL refuses a NUL character in text; MariaDB's TEXT
holds 65,535 bytes. A value that reached a coalesced batch and failed there would fail every
other caller's request with it, so the rules are checked here, up front, with an error naming
the field; and text the system writes itself (error messages) is cleaned to fit instead.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from conveyor.errors import ValidationError

MAX_DEPTH = 64  # arrays and objects inside each other; orjson's own limit is 254
INT_MIN = -(2**63)  # orjson writes integers in [-2^63, 2^64 - 1]; JSON readers of other
INT_MAX = 2**64 - 1  # languages may be stricter, but nothing in this range changes here
MAX_ERROR_CHARS = 10_000  # 4 bytes a character at most: fits MariaDB's 65,535-byte TEXT
_SURROGATE = re.compile("[\ud800-\udfff]")
CUT_MARKER = "… [cut: {total} characters in all]"


def encode_json(value: Any, where: str) -> bytes:
    """The orjson text of ``value``, refusing what orjson would change or refuse: non-finite
    numbers, integers beyond 64 bits, lone surrogates in strings or keys, nesting deeper than
    ``MAX_DEPTH``. ``where`` names the field in the error (``payload``), extended with the path
    inside it.

    orjson itself refuses big integers, surrogates and very deep documents at C speed; only a
    document whose text could hide a NaN (written as ``null``) or could be too deep (more
    brackets than ``MAX_DEPTH``) is walked in Python, and the slow walk that names the field
    runs only once something is wrong."""
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError:
        data = None
    suspect = data is None or b"null" in data or data.count(b"[") + data.count(b"{") > MAX_DEPTH
    if data is None or (suspect and not _sound(value, 0)):
        _name_fault(value, where)
        raise ValidationError(f"{where}: not a JSON value")
    return data


def _sound(item: Any, depth: int) -> bool:
    """No non-finite float and no nesting past ``MAX_DEPTH``: the checks orjson does not do."""
    if isinstance(item, float):
        return math.isfinite(item)
    if isinstance(item, dict):
        children: Any = item.values()
    elif isinstance(item, list):
        children = item
    else:
        return True
    if depth >= MAX_DEPTH:
        return False
    return all(_sound(child, depth + 1) for child in children)


def _name_fault(value: Any, where: str) -> None:
    """Walk ``value`` with paths and raise ``ValidationError`` at its first fault."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise ValidationError(f"{path}: nested deeper than {MAX_DEPTH} levels")
            stack.extend((child, at, depth + 1) for child, at in _children(item, path))
        else:
            _check_scalar(item, path)


def _children(item: dict[Any, Any] | list[Any], path: str) -> list[tuple[Any, str]]:
    if isinstance(item, list):
        return [(child, f"{path}[{i}]") for i, child in enumerate(item)]
    for key in item:
        if not isinstance(key, str):
            raise ValidationError(f"{path}: object keys must be strings")
        check_text(key, f"{path} key {key!r}")
    return [(child, f"{path}.{key}") for key, child in item.items()]


def _check_scalar(item: Any, path: str) -> None:
    if isinstance(item, str):
        check_text(item, path)
    elif isinstance(item, bool) or item is None:
        return
    elif isinstance(item, int):
        if not INT_MIN <= item <= INT_MAX:
            raise ValidationError(f"{path}: integers must fit in 64 bits")
    elif isinstance(item, float):
        if not math.isfinite(item):
            raise ValidationError(
                f"{path}: {item} is not a JSON number (NaN, Infinity and numbers beyond "
                "±1.8e308 cannot be stored)"
            )
    else:
        raise ValidationError(f"{path}: {type(item).__name__} is not a JSON value")


def check_text(text: str, where: str, *, column: bool = False) -> None:
    """Refuse a lone surrogate (not encodable as UTF-8) and, for text stored in a column of
    its own (``column``), a NUL character, which PostgreSQL refuses."""
    if not _encodes(text):
        raise ValidationError(f"{where}: holds a lone UTF-16 surrogate, which is not Unicode text")
    if column and "\x00" in text:
        raise ValidationError(f"{where}: holds a NUL character")


def clean_text(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Text the system writes itself (an error message, a traceback), made storable on every
    database: lone surrogates replaced, NUL characters dropped, cut at ``limit`` characters
    with a marker saying how long it was."""
    text = _SURROGATE.sub("\ufffd", text).replace("\x00", "")
    if len(text) <= limit:
        return text
    marker = CUT_MARKER.format(total=len(text))
    return text[: limit - len(marker)] + marker


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
